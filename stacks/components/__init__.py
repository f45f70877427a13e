"""Component resources of the DR estate; each module builds one concern for AWS and/or Azure."""
