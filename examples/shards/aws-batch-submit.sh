#!/bin/sh
# Submits one round of the sharded backup to AWS Batch: `drctl backup init`, then the 8-shard array job once
# init has succeeded, then `drctl backup seal` once every child of the array has succeeded. Batch fails a job
# whose dependency failed, so a round with a failed shard writes no recovery point (the shards that finished
# keep their manifests in the set; see docs/sharding.md for finishing such a round).
#
# Register the job definition once (again after each change; submissions take the latest revision):
#   aws batch register-job-definition --cli-input-json file://aws-batch-array-job.json
# The job queue `drctl-backup` and its compute environment are yours to make. Credentials: whatever the AWS CLI
# finds (SSO, a role); this script handles no key.
#
# Each child of the array job gets AWS_BATCH_JOB_ARRAY_INDEX (0..7), its --shard index, and AWS_BATCH_JOB_ID
# "<array job id>:<index>", whose array job id is the round's --shard-group. The seal is told the same id here.
set -eu
here=$(dirname "$0")

submit() {
    aws batch submit-job --cli-input-json "$1" --query jobId --output text
}

init_id=$(submit "$(cat "$here/aws-batch-submit-init.json")")
copy_id=$(submit "$(sed "s/INIT_JOB_ID/$init_id/g" "$here/aws-batch-submit-copy.json")")
seal_id=$(submit "$(sed "s/COPY_JOB_ID/$copy_id/g" "$here/aws-batch-submit-seal.json")")

echo "init:  $init_id"
echo "copy:  $copy_id (8 shards, shard group $copy_id)"
echo "seal:  $seal_id"
echo "follow: aws batch describe-jobs --jobs $seal_id --query 'jobs[0].[status,statusReason]'"
