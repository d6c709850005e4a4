"""Run the composite action's steps (action.yml) the way a GitHub runner does: each
step's `run` in bash with its `env` (inputs substituted), GITHUB_OUTPUT / GITHUB_PATH /
RUNNER_TEMP / GITHUB_ACTION_PATH set, `if:` on the mode. The install step is replaced
by the binaries this CI run built (`cargo install --locked` is checked on its own in
.ci/run). Asserts the outputs of three uses: PASS, fraud, and simulate + validate.

usage: <python with PyYAML> .ci/action-smoke.py <bin dir>
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
bindir = sys.argv[1]
action = yaml.safe_load(open(os.path.join(root, "action.yml")))
defaults = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}


def use(inputs):
    tmp = tempfile.mkdtemp()
    binroot = os.path.join(tmp, "mlnode", "bin")
    os.makedirs(binroot)
    for b in ("mlnode-validate", "mlnode-sim"):
        shutil.copy(os.path.join(bindir, b), binroot)
    values = dict(defaults, **inputs)
    outputs = {}
    for step in action["runs"]["steps"]:
        if step["name"].startswith("Install"):
            continue
        cond = step.get("if")
        if cond:
            m = re.fullmatch(r"inputs\.mode (==|!=) '(\w+)'", cond)
            assert m, cond
            if (values["mode"] == m.group(2)) != (m.group(1) == "=="):
                continue
        env = dict(os.environ)
        for k, v in step.get("env", {}).items():
            m = re.fullmatch(r"\$\{\{ inputs\.([\w-]+) \}\}", str(v))
            env[k] = values[m.group(1)] if m else str(v)
        out_file = os.path.join(tmp, "out")
        open(out_file, "w").close()
        env.update(RUNNER_TEMP=tmp, GITHUB_OUTPUT=out_file, GITHUB_ACTION_PATH=root,
                   GITHUB_PATH=os.path.join(tmp, "path"), NO_COLOR="1")
        r = subprocess.run(["bash", "-e", "-c", step["run"]], env=env, cwd=tmp,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        sys.stdout.write(r.stdout[-600:])
        for line in open(out_file):
            k, _, v = line.rstrip("\n").partition("=")
            outputs[k] = v
        outputs["step-exit"] = r.returncode
    return outputs


o = use({"mlnode-url": "sim:honest", "args": "--time-scale 1000"})
assert o["verdict"] == "PASS" and o["exit-code"] == "0", o
o = use({"mlnode-url": "sim:fraud-int4", "args": "--time-scale 1000"})
assert o["verdict"].startswith("FAIL") and o["exit-code"] == "2", o
sim = use({"mode": "simulate", "args": "--deployed-model Qwen/Qwen3-32B-FP8 --time-scale 1000"})
url = sim["url"]
assert url.startswith("http://127.0.0.1:"), sim
o = use({"mlnode-url": url + "/v3.0.8", "args": "--skip-download --skip-deploy --time-scale 1000"})
assert o["verdict"] == "PASS", o
subprocess.run(["pkill", "-f", "mlnode-sim --port 0 --deployed-model Qwen/Qwen3-32B-FP8 --time-scale 1000"])
print("action: validate (PASS, fraud exit 2) and simulate + validate through /v3.0.8 work as a runner runs them")
