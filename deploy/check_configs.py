"""Runs every example configuration in deploy/ (and core/tgcdn-core.example.toml) through the
binaries' own check-config, the way the file's platform would hand it to the process.

Called by deploy/check with the built binaries and a directory of fresh deploy/gen-secrets
output. Each case becomes a clean environment (PATH, RUST_LOG=warn and the TGCDN_* pairs):
  * compose.yaml (and with compose.tls.yaml on top): each service's environment, secret
    targets mapped back to the generated files;
  * systemd units: the env file example, the unit's Environment= lines with %d (credentials)
    pointing at the generated files and %S at a scratch directory;
  * Kubernetes: each container's env, secretKeyRef values from secrets.example.yaml, $(VAR)
    expanded as the kubelet does, fieldRef values replaced by a pod name;
  * fly.toml: [env] plus the generated edge secrets (what `fly secrets set` adds).
A case fails when check-config fails or warns about an unknown setting. Needs ruamel.yaml
(the check-jsonschema venv has it) and Python 3.11 (tomllib).
"""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from ruamel.yaml import YAML

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
yaml = YAML(typ="safe")


def run_check(name, kind, env, binaries):
    """Runs `kind`'s check-config with `env`; returns an error line or None."""
    unknown_names = [k for k in env if not k.startswith("TGCDN_")]
    if unknown_names:
        return f"{name}: not TGCDN_* settings: {unknown_names}"
    argv = [binaries["core"], "check-config"] if kind == "core" else [binaries["edge"], "--check-config"]
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RUST_LOG": "warn", **env}
    done = subprocess.run(argv, env=clean, capture_output=True, text=True, timeout=60)
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        return f"{name}: {kind} check-config failed:\n{output}"
    if "unknown setting" in output:
        return f"{name}: unknown setting:\n{output}"
    print(f"ok   {name} ({kind}: {len(env)} TGCDN_* variables)")
    return None


def kind_of(text):
    if "tgcdn-core" in text:
        return "core"
    if "tgcdn-edge" in text:
        return "edge"
    raise ValueError(f"cannot tell core from edge: {text}")


def compose_cases(secrets_dir):
    base = yaml.load((DEPLOY / "compose.yaml").read_text())
    tls = yaml.load((DEPLOY / "compose.tls.yaml").read_text())
    for label, overlays in (("compose.yaml", []), ("compose.yaml + compose.tls.yaml", [tls])):
        files = {name: s["file"] for name, s in base["secrets"].items()}
        for overlay in overlays:
            files.update({name: s["file"] for name, s in overlay.get("secrets", {}).items()})
        for service_name, service in base["services"].items():
            env = dict(service.get("environment", {}))
            mounts = list(service.get("secrets", []))
            for overlay in overlays:
                extra = overlay.get("services", {}).get(service_name, {})
                env.update(extra.get("environment", {}))
                mounts += extra.get("secrets", [])
            # Compose mounts each secret file at its target: point the variables at the file
            # deploy/gen-secrets made instead.
            targets = {
                m["target"]: secrets_dir / Path(files[m["source"]]).name for m in mounts
            }
            env = {k: str(targets.get(str(v), v)) for k, v in env.items()}
            yield f"{label}: {service_name}", kind_of(service["image"]), env


def env_file(path):
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def systemd_cases(secrets_dir, state_dir):
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        kind = kind_of(unit.name)
        env = env_file(DEPLOY / "systemd" / f"{kind}.env.example")
        env.pop("RUST_LOG", None)
        credentials = {}
        for line in unit.read_text().splitlines():
            if line.startswith("LoadCredential="):
                name, _, source = line.removeprefix("LoadCredential=").partition(":")
                credentials[name] = secrets_dir / Path(source).name
            elif line.startswith("Environment="):
                key, _, value = line.removeprefix("Environment=").partition("=")
                value = re.sub(r"%d/([\w.-]+)", lambda m: str(credentials[m.group(1)]), value)
                env[key] = value.replace("%S", str(state_dir))
        yield f"systemd/{unit.name} + {kind}.env.example", kind, env


def k8s_cases():
    secrets = {}
    for doc in yaml.load_all((DEPLOY / "k8s" / "secrets.example.yaml").read_text()):
        if doc["kind"] == "Secret":
            secrets[doc["metadata"]["name"]] = doc["stringData"]
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.load_all(path.read_text()):
            if doc["kind"] not in ("Deployment", "StatefulSet"):
                continue
            for container in doc["spec"]["template"]["spec"]["containers"]:
                resolved = {}
                for var in container.get("env", []):
                    if "value" in var:
                        value = re.sub(r"\$\((\w+)\)", lambda m: resolved.get(m.group(1), m.group(0)), var["value"])
                    elif "secretKeyRef" in var["valueFrom"]:
                        ref = var["valueFrom"]["secretKeyRef"]
                        value = secrets[ref["name"]][ref["key"]]
                    else:
                        value = "tgcdn-edge-5d8f7c9b6-x2x7q"  # a fieldRef: the pod's name
                    resolved[var["name"]] = value
                env = {k: v for k, v in resolved.items() if k.startswith("TGCDN_")}
                name = f"k8s/{path.name}: {doc['kind']} {doc['metadata']['name']}"
                yield name, kind_of(container["image"]), env


def fly_cases(secrets_dir):
    config = tomllib.loads((DEPLOY / "fly" / "fly.toml").read_text())
    env = {k: v for k, v in config["env"].items() if k != "RUST_LOG"}
    env["TGCDN_CONFIG"] = str(secrets_dir / "edge.toml")
    yield "fly/fly.toml [env] + secrets", "edge", env


def main():
    core, edge, secrets_dir, state_dir = sys.argv[1:5]
    binaries = {"core": core, "edge": edge}
    secrets_dir, state_dir = Path(secrets_dir), Path(state_dir)
    cases = [
        ("core/tgcdn-core.example.toml", "core",
         {"TGCDN_CONFIG": str(ROOT / "core" / "tgcdn-core.example.toml")}),
        *compose_cases(secrets_dir),
        *systemd_cases(secrets_dir, state_dir),
        *k8s_cases(),
        *fly_cases(secrets_dir),
    ]
    errors = [e for e in (run_check(n, k, env, binaries) for n, k, env in cases) if e]
    for error in errors:
        print(f"FAIL {error}", file=sys.stderr)
    print(f"{len(cases) - len(errors)} passed, {len(errors)} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
