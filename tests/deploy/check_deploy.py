#!/usr/bin/env python3
"""Consistency checks of hookq's deployment files (deploy/) and operations docs
against the code, run by tests/integration/test_deploy_files.c.

The source of truth is the built binary: `hookq <cmd> --help` lists every
option with its [env HOOKQ_X] twin, so these checks stay true as options are
added. Each check is a subcommand; exit 0 = pass, 1 = fail (every problem on
its own line, naming the file), 77 = cannot run here (the reason on stderr).

  check_deploy.py --src DIR --bin HOOKQ CHECK [args]
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
ENV_RE = re.compile(r"\bHOOKQ_[A-Z0-9_]*[A-Z0-9]\b")
# Commands whose options are configuration; groups with subcommands are asked
# per subcommand as well (their --help may list only the group).
HELP_COMMANDS = [
    ["worker"], ["scheduler"], ["produce"], ["stats"], ["up"], ["sign"], ["verify"],
    ["event", "show"], ["endpoint"], ["dlq"],
    ["endpoint", "add"], ["endpoint", "list"], ["endpoint", "show"], ["endpoint", "update"],
    ["endpoint", "rotate"], ["endpoint", "enable"], ["endpoint", "disable"],
    ["endpoint", "delete"], ["dlq", "list"], ["dlq", "show"], ["dlq", "replay"], ["dlq", "purge"],
    ["api"], ["api-key", "create"], ["api-key", "list"], ["api-key", "revoke"],
]
# Commands that deployments run: their --help must list options, or the
# deployment files cannot be checked (the command is not built yet).
REQUIRED = ("worker", "scheduler")
OPT_RE = re.compile(r"^\s{2}(--[a-z0-9-]+)(?:\s+\S+)?\s{2,}.*?(?:\[env (HOOKQ_[A-Z0-9_]+)\])?\s*$")


class Problems:
    def __init__(self):
        self.lines = []

    def add(self, msg):
        if msg not in self.lines:  # checks repeated per service report a file's fault once
            self.lines.append(msg)

    def finish(self, what):
        for line in self.lines:
            print(line)
        if self.lines:
            print(f"{what}: {len(self.lines)} problem(s)")
            return 1
        print(f"{what}: ok")
        return 0


def skip(why):
    print(f"skip: {why}", file=sys.stderr)
    return SKIP


def load_yaml_module():
    try:
        import yaml  # noqa: F401  (Debian: python3-yaml)
        return yaml
    except ImportError:
        return None


# ---- Reading the binary's help ----------------------------------------------


def help_options(binary, cmd):
    """[(flag, env or None)] from `hookq <cmd...> --help`, or None when it fails."""
    try:
        p = subprocess.run([binary, *cmd, "--help"], capture_output=True, text=True, timeout=20,
                           env={k: v for k, v in os.environ.items() if not k.startswith("HOOKQ_")})
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return None
    opts = []
    for line in p.stdout.splitlines():
        m = OPT_RE.match(line)
        if m and m.group(1) != "--help":
            opts.append((m.group(1), m.group(2)))
    return opts


def all_help(binary, probs):
    """{"worker": [(flag, env)], ...}; a required command without options is a problem."""
    out = {}
    for cmd in HELP_COMMANDS:
        opts = help_options(binary, cmd)
        if opts:
            out[" ".join(cmd)] = opts
    for cmd in REQUIRED:
        if cmd not in out:
            probs.add(f"`hookq {cmd} --help` lists no options (exit status non-zero or "
                      f"'not built yet'): the deployment files cannot be checked against it")
    return out


def env_of(helps, cmd):
    return {env for _, env in helps.get(cmd, []) if env}


def known_env(helps):
    return {env for opts in helps.values() for _, env in opts if env}


def text_files(root):
    for path in sorted(glob.glob(os.path.join(root, "**", "*"), recursive=True)):
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    yield path, f.read()
            except UnicodeDecodeError:
                continue


# ---- Checks -------------------------------------------------------------------


def check_env_known(a):
    """Every HOOKQ_* named in deploy/ and docs/ is some command's option."""
    probs = Problems()
    helps = all_help(a.bin, probs)
    known = known_env(helps)
    if not known:
        probs.add("no command's --help lists any [env HOOKQ_*] variable")
        return probs.finish("env-known")
    # HOOKQ_* names of the public C API (HOOKQ_EINVAL...) are not variables.
    c_api = set()
    for _, text in text_files(os.path.join(a.src, "include", "hookq")):
        c_api |= set(ENV_RE.findall(text))
    for top in ("deploy", "docs"):
        for path, text in text_files(os.path.join(a.src, top)):
            for n, line in enumerate(text.splitlines(), 1):
                for var in ENV_RE.findall(line):
                    if var not in known and var not in c_api:
                        rel = os.path.relpath(path, a.src)
                        probs.add(f"{rel}:{n}: {var} is not an option of any hookq command "
                                  f"(no '[env {var}]' in any --help)")
    return probs.finish("env-known")


def check_options_documented(a):
    """Every worker and scheduler option has a row in docs/operations.md's tables."""
    probs = Problems()
    helps = all_help(a.bin, probs)
    path = os.path.join(a.src, "docs", "operations.md")
    try:
        with open(path, encoding="utf-8") as f:
            rows = [line for line in f if line.lstrip().startswith("|")]
    except OSError as e:
        probs.add(f"docs/operations.md: {e.strerror}")
        return probs.finish("options-documented")
    for cmd in REQUIRED:
        for flag, env in helps.get(cmd, []):
            if env is None:
                continue
            flag_re = re.compile(re.escape(flag) + r"(?![a-z0-9-])")
            env_re = re.compile(r"\b" + re.escape(env) + r"\b")
            if not any(env_re.search(r) and flag_re.search(r) for r in rows):
                probs.add(f"docs/operations.md: no table row names both {env} and {flag} "
                          f"(an option of `hookq {cmd}`)")
    return probs.finish("options-documented")


def check_yaml(a):
    """Every YAML file under deploy/ parses."""
    yaml = load_yaml_module()
    if yaml is None:
        return skip("python3 has no yaml module (Debian package python3-yaml)")
    probs = Problems()
    files = [p for ext in ("yml", "yaml")
             for p in glob.glob(os.path.join(a.src, "deploy", "**", "*." + ext), recursive=True)]
    if not files:
        probs.add("deploy/: no YAML files found")
    for path in sorted(files):
        try:
            with open(path, encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
            if not docs:
                probs.add(f"{os.path.relpath(path, a.src)}: empty")
        except yaml.YAMLError as e:
            probs.add(f"{os.path.relpath(path, a.src)}: {str(e).splitlines()[0]}")
    dash = os.path.join(a.src, "deploy", "prometheus", "grafana-dashboard.json")
    try:
        with open(dash, encoding="utf-8") as f:
            d = json.load(f)
        if not d.get("panels"):
            probs.add("deploy/prometheus/grafana-dashboard.json: no panels")
    except (OSError, ValueError) as e:
        probs.add(f"deploy/prometheus/grafana-dashboard.json: {e}")
    return probs.finish("yaml")


def duration_s(v):
    """'15s', '5m', '200ms', '1h', a bare number of seconds -> seconds (float)."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", str(v).strip())
    if not m:
        raise ValueError(f"not a duration: {v!r}")
    mult = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}[m.group(2)]
    return int(m.group(1)) * mult


def port_of(addr):
    return int(str(addr).rsplit(":", 1)[1])


def kustomize(path):
    """The rendered documents of a kustomization, or None when kubectl is absent."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return None
    p = subprocess.run([kubectl, "kustomize", path], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "failed")
    import yaml
    return [d for d in yaml.safe_load_all(p.stdout) if d]


def load_k8s(src):
    """Documents of deploy/k8s: rendered by kustomize when possible, else the raw files."""
    import yaml
    base = os.path.join(src, "deploy", "k8s")
    try:
        docs = kustomize(base)
        keda = kustomize(os.path.join(base, "keda"))
    except RuntimeError as e:
        return None, None, f"kubectl kustomize: {e}"
    if docs is None:
        docs = raw_docs(os.path.join(base, "base"))
        keda = docs + raw_docs(os.path.join(base, "keda"))
    return docs, keda, None


def raw_docs(folder):
    """The documents of a folder's *.yaml files, Kustomizations left out (the
    fallback when kubectl cannot render an overlay: its patches are not applied)."""
    import yaml
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.yaml"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            out += [d for d in yaml.safe_load_all(f) if d and d.get("kind") != "Kustomization"]
    return out


def load_overlay(src, name):
    """Rendered documents of deploy/k8s/<name> (its base included), or the raw files."""
    path = os.path.join(src, "deploy", "k8s", name)
    docs = kustomize(path)
    if docs is None:
        docs = raw_docs(os.path.join(src, "deploy", "k8s", "base")) + raw_docs(path)
    return docs


def find(docs, kind, name):
    for d in docs:
        if d.get("kind") == kind and d.get("metadata", {}).get("name") == name:
            return d
    return None


def dockerfile(src):
    with open(os.path.join(src, "deploy", "Dockerfile"), encoding="utf-8") as f:
        text = f.read()
    # Join continuation lines so each instruction is one line.
    return re.sub(r"\\\n", " ", text)


def runtime_stage(df):
    stages = re.split(r"(?m)^FROM\s", df)
    return stages[-1]


def healthcheck_cmd(df):
    m = re.search(r"(?m)^HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$", df)
    return json.loads(m.group(1)) if m else None


def check_consistency(a):
    """Image, port 9090, /healthz, /metrics, grace periods, group and stream agree everywhere."""
    yaml = load_yaml_module()
    if yaml is None:
        return skip("python3 has no yaml module (Debian package python3-yaml)")
    probs = Problems()
    helps = all_help(a.bin, probs)
    src = a.src
    port = a.port

    # -- Dockerfile
    df = dockerfile(src)
    rt = runtime_stage(df)
    if not re.search(rf"(?m)^EXPOSE\s+{port}\b", rt):
        probs.add(f"deploy/Dockerfile: runtime stage does not EXPOSE {port}")
    m = re.search(r"HOOKQ_METRICS=(\S+)", rt)
    if not m or port_of(m.group(1)) != port:
        probs.add(f"deploy/Dockerfile: ENV HOOKQ_METRICS does not serve port {port}")
    hc = healthcheck_cmd(rt)
    if not hc or "/healthz" not in " ".join(hc):
        probs.add("deploy/Dockerfile: no HEALTHCHECK CMD [...] requesting /healthz")
    if not re.search(r'(?m)^ENTRYPOINT\s+\["hookq"\]', rt):
        probs.add('deploy/Dockerfile: ENTRYPOINT is not ["hookq"]')
    if not re.search(r'(?m)^CMD\s+\["worker"\]', rt):
        probs.add('deploy/Dockerfile: CMD is not ["worker"]')
    if not re.search(r"(?m)^USER\s+\d+", rt):
        probs.add("deploy/Dockerfile: runtime stage has no numeric non-root USER")
    if "-DHQ_BUILD_TESTS=OFF" not in df:
        probs.add("deploy/Dockerfile: build stage does not configure -DHQ_BUILD_TESTS=OFF")
    if "/usr/local/bin/hookq" not in df:
        probs.add("deploy/Dockerfile: hookq is not installed as /usr/local/bin/hookq")

    # -- docker-compose.yml
    with open(os.path.join(src, "deploy", "docker-compose.yml"), encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    svcs = compose.get("services", {})
    images = set()
    timeout_s = 15.0
    for role in ("worker", "scheduler"):
        s = svcs.get(role)
        if not s:
            probs.add(f"deploy/docker-compose.yml: no '{role}' service")
            continue
        images.add(s.get("image"))
        env = s.get("environment") or {}
        cmdenv = env_of(helps, role)
        for var in env:
            if cmdenv and var not in cmdenv:
                probs.add(f"deploy/docker-compose.yml: service {role} sets {var}, which "
                          f"`hookq {role}` does not read")
        if s.get("command", [None])[0] != role:
            probs.add(f"deploy/docker-compose.yml: service {role} does not run `hookq {role}`")
    w = svcs.get("worker", {})
    wenv = w.get("environment") or {}
    if "HOOKQ_CONSUMER" in wenv:
        probs.add("deploy/docker-compose.yml: HOOKQ_CONSUMER would give every replica the same "
                  "consumer name")
    if "HOOKQ_TIMEOUT" in wenv:
        timeout_s = duration_s(wenv["HOOKQ_TIMEOUT"])
    if "HOOKQ_METRICS" not in wenv or port_of(wenv["HOOKQ_METRICS"]) != port:
        probs.add(f"deploy/docker-compose.yml: worker HOOKQ_METRICS is not on port {port}")
    if w.get("deploy", {}).get("replicas") != 3:
        probs.add("deploy/docker-compose.yml: worker deploy.replicas is not 3")
    if svcs.get("scheduler", {}).get("deploy", {}).get("replicas") != 2:
        probs.add("deploy/docker-compose.yml: scheduler deploy.replicas is not 2")
    if not svcs.get("scheduler", {}).get("healthcheck", {}).get("disable"):
        probs.add("deploy/docker-compose.yml: scheduler inherits the worker's /healthz check")
    grace = w.get("stop_grace_period")
    if not grace or duration_s(grace) <= timeout_s + 10:
        probs.add(f"deploy/docker-compose.yml: worker stop_grace_period {grace} is not above "
                  f"HOOKQ_TIMEOUT + 10s ({timeout_s + 10:g}s), the longest drain")
    red = " ".join(svcs.get("redis", {}).get("command", []))
    for want in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        if want not in red:
            probs.add(f"deploy/docker-compose.yml: redis is not started with {want}")
    if len(images) != 1 or None in images:
        probs.add(f"deploy/docker-compose.yml: worker and scheduler images differ: {images}")

    # -- prometheus.yml
    with open(os.path.join(src, "deploy", "prometheus", "prometheus.yml"), encoding="utf-8") as f:
        prom = yaml.safe_load(f)
    jobs = {j.get("job_name"): j for j in prom.get("scrape_configs", [])}
    job = jobs.get("hookq-worker")
    if not job:
        probs.add("deploy/prometheus/prometheus.yml: no scrape job 'hookq-worker'")
    else:
        if job.get("metrics_path", "/metrics") != "/metrics":
            probs.add("deploy/prometheus/prometheus.yml: metrics_path is not /metrics")
        ports = [c.get("port") for c in job.get("dns_sd_configs", [])]
        ports += [port_of(t) for c in job.get("static_configs", []) for t in c.get("targets", [])]
        if not ports or any(p != port for p in ports):
            probs.add(f"deploy/prometheus/prometheus.yml: hookq-worker targets not on port {port}")
    with open(os.path.join(src, "deploy", "prometheus", "alerts.yml"), encoding="utf-8") as f:
        alerts = f.read()
    for jobref in re.findall(r'job="([^"]+)"', alerts):
        if jobref not in jobs:
            probs.add(f"deploy/prometheus/alerts.yml: job=\"{jobref}\" is not a scrape job")

    # -- Kubernetes
    docs, keda_docs, err = load_k8s(src)
    if err:
        probs.add(f"deploy/k8s: {err}")
        return probs.finish("consistency")
    cm = find(docs, "ConfigMap", "hookq-config")
    data = (cm or {}).get("data", {})
    if not cm:
        probs.add("deploy/k8s: no ConfigMap hookq-config")
    allenv = env_of(helps, "worker") | env_of(helps, "scheduler")
    for var in data:
        if allenv and var not in allenv:
            probs.add(f"deploy/k8s ConfigMap: {var} is read by neither the worker nor the scheduler")
    if "HOOKQ_CONSUMER" in data:
        probs.add("deploy/k8s ConfigMap: HOOKQ_CONSUMER would give every worker the same consumer name")
    if "HOOKQ_REDIS_URL" in data:
        probs.add("deploy/k8s ConfigMap: HOOKQ_REDIS_URL belongs in the Secret (it may hold a password)")
    if "HOOKQ_METRICS" not in data or port_of(data["HOOKQ_METRICS"]) != port:
        probs.add(f"deploy/k8s ConfigMap: HOOKQ_METRICS is not on port {port}")
    k_timeout = duration_s(data.get("HOOKQ_TIMEOUT", "15s"))
    sec = find(docs, "Secret", "hookq-redis")
    if not sec or "HOOKQ_REDIS_URL" not in {**sec.get("stringData", {}), **sec.get("data", {})}:
        probs.add("deploy/k8s: no Secret hookq-redis with key HOOKQ_REDIS_URL")
    k_images = set()
    for name, role in (("hookq-worker", "worker"), ("hookq-scheduler", "scheduler")):
        dep = find(docs, "Deployment", name)
        if not dep:
            probs.add(f"deploy/k8s: no Deployment {name}")
            continue
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        k_images.add(c.get("image"))
        where = f"deploy/k8s Deployment {name}"
        if c.get("args", [None])[0] != role:
            probs.add(f"{where}: does not run `hookq {role}`")
        psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
        if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
            probs.add(f"{where}: runAsNonRoot is not set")
        if csc.get("readOnlyRootFilesystem") is not True:
            probs.add(f"{where}: readOnlyRootFilesystem is not true")
        if csc.get("allowPrivilegeEscalation") is not False:
            probs.add(f"{where}: allowPrivilegeEscalation is not false")
        if "ALL" not in csc.get("capabilities", {}).get("drop", []):
            probs.add(f"{where}: capabilities do not drop ALL")
        if not c.get("resources", {}).get("requests") or not c.get("resources", {}).get("limits"):
            probs.add(f"{where}: no resource requests and limits")
        secret_env = [e for e in c.get("env", []) if e.get("name") == "HOOKQ_REDIS_URL"
                      and e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "hookq-redis"]
        if not secret_env:
            probs.add(f"{where}: HOOKQ_REDIS_URL does not come from Secret hookq-redis")
        if role == "worker":
            tg = pod.get("terminationGracePeriodSeconds", 30)
            if tg <= k_timeout + 10:
                probs.add(f"{where}: terminationGracePeriodSeconds {tg} is not above "
                          f"HOOKQ_TIMEOUT + 10s ({k_timeout + 10:g}s), the longest drain")
            named = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                hg = c.get(probe, {}).get("httpGet", {})
                pp = named.get(hg.get("port"), hg.get("port"))
                if hg.get("path") != "/healthz" or pp != port:
                    probs.add(f"{where}: {probe} is not GET /healthz on port {port}")
        elif dep["spec"].get("replicas") != 2:
            probs.add(f"{where}: replicas is not 2")
    if not find(docs, "PodDisruptionBudget", "hookq-worker"):
        probs.add("deploy/k8s: no PodDisruptionBudget hookq-worker")
    if not find(docs, "HorizontalPodAutoscaler", "hookq-worker"):
        probs.add("deploy/k8s: no HorizontalPodAutoscaler hookq-worker")
    repos = {str(i).split(":")[0] for i in images | k_images if i}
    if len(repos) != 1:
        probs.add(f"deploy: compose and k8s name different images: {sorted(images | k_images)}")
    # Tags agree where both are given (kustomize renders the tag; raw files have none).
    tags = {str(i).split(":", 1)[1] for i in images | k_images if i and ":" in str(i)}
    if len(tags) > 1:
        probs.add(f"deploy: compose and k8s use different image tags: {sorted(tags)}")
    if any(d.get("metadata", {}).get("namespace") for d in keda_docs):
        probs.add("deploy/k8s: a manifest sets metadata.namespace (they must be namespace-agnostic)")

    # -- KEDA overlay
    so = next((d for d in keda_docs if d.get("kind") == "ScaledObject"), None)
    if not so:
        probs.add("deploy/k8s/keda: no ScaledObject")
    else:
        if so.get("apiVersion") != "keda.sh/v1alpha1":
            probs.add("deploy/k8s/keda: ScaledObject apiVersion is not keda.sh/v1alpha1")
        if so["spec"].get("scaleTargetRef", {}).get("name") != "hookq-worker":
            probs.add("deploy/k8s/keda: ScaledObject does not target hookq-worker")
        trig = next((t for t in so["spec"].get("triggers", []) if t.get("type") == "redis-streams"),
                    None)
        md = (trig or {}).get("metadata", {})
        if not trig:
            probs.add("deploy/k8s/keda: no redis-streams trigger")
        if data.get("HOOKQ_PREFIX", "hookq") != a.prefix:
            probs.add(f"deploy/k8s ConfigMap: HOOKQ_PREFIX is not '{a.prefix}', the prefix the "
                      f"KEDA stream name is checked against")
        if md.get("stream") != a.events_key:
            probs.add(f"deploy/k8s/keda: stream '{md.get('stream')}' is not '{a.events_key}'")
        if md.get("consumerGroup") != a.group:
            probs.add(f"deploy/k8s/keda: consumerGroup '{md.get('consumerGroup')}' is not '{a.group}'")
        if "lagCount" not in md and "pendingEntriesCount" not in md:
            probs.add("deploy/k8s/keda: trigger has neither lagCount nor pendingEntriesCount")
        if any(d.get("kind") == "HorizontalPodAutoscaler" for d in keda_docs) and \
                shutil.which("kubectl"):
            probs.add("deploy/k8s/keda: the rendered overlay still has the CPU HPA (it would "
                      "fight KEDA's)")

    # -- systemd
    unit_dir = os.path.join(src, "deploy", "systemd")
    for unit in ("hookq-worker@.service", "hookq-scheduler.service"):
        try:
            with open(os.path.join(unit_dir, unit), encoding="utf-8") as f:
                u = f.read()
        except OSError:
            probs.add(f"deploy/systemd/{unit}: missing")
            continue
        m = re.search(r"(?m)^TimeoutStopSec=(\S+)", u)
        if "worker" in unit and (not m or duration_s(m.group(1)) <= timeout_s + 10):
            probs.add(f"deploy/systemd/{unit}: TimeoutStopSec is not above HOOKQ_TIMEOUT + 10s")
        if not re.search(r"(?m)^ExecStart=/usr/local/bin/hookq ", u):
            probs.add(f"deploy/systemd/{unit}: ExecStart is not /usr/local/bin/hookq (the "
                      f"image's and `cmake --install`'s path)")
        with open(os.path.join(unit_dir, "hookq.env.example"), encoding="utf-8") as f:
            if re.search(r"(?m)^HOOKQ_CONSUMER=", f.read()):
                probs.add("deploy/systemd/hookq.env.example: HOOKQ_CONSUMER is shared by every "
                          "instance; the unit passes --consumer %H-%i")
        if "worker" in unit and "--consumer %H-%i" not in u:
            probs.add(f"deploy/systemd/{unit}: instances do not get --consumer %H-%i")
    return probs.finish("consistency")


# ---- The partitioned layout (Redis Cluster, Sentinel) ----------------------------


def partition_tags(P):
    """The hash tags of P partitions: docs/internals/partitions.md's rule, as
    common/partition.c computes it (CRC16/XMODEM = binascii.crc_hqx(data, 0))."""
    import binascii
    tags = []
    for i in range(P):
        first, end = i * 16384 // P, (i + 1) * 16384 // P
        margin = (end - first) // 4
        n = 0
        while True:
            tag = f"p{i}" if n == 0 else f"p{i}.{n}"
            if first + margin <= binascii.crc_hqx(tag.encode(), 0) % 16384 < end - margin:
                tags.append(tag)
                break
            n += 1
    return tags


TAG_LIST_RE = re.compile(r"(?<![\w.{])(p0(?:\.\d+)?(?:,p\d+(?:\.\d+)?)+)(?![\w.])")
URL_CHECKED = {}


def url_kind(binary, url):
    """How the binary's URL parser takes url: (ok, message). `hookq stats` parses
    the URL before connecting; a parse error starts '--redis-url:', anything
    else (a failed connection to these names, or success) means it parsed.
    ok is False when it did not parse, True when it did; message is the binary's."""
    if url in URL_CHECKED:
        return URL_CHECKED[url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKQ_")}
    try:
        p = subprocess.run([binary, "stats", "--redis-url", url], capture_output=True,
                           text=True, timeout=20, env=env)
        msg = (p.stderr.strip() or p.stdout.strip()).splitlines()
        msg = msg[0] if msg else f"exit {p.returncode}"
        res = ("--redis-url:" not in msg, msg)
    except subprocess.TimeoutExpired:
        res = (True, "timed out connecting (the URL parsed)")
    URL_CHECKED[url] = res
    return res


def url_hosts(url, scheme):
    """[(host, port)] of a redis-cluster:// or redis-sentinel:// URL, and the
    path after the host list ('' when none)."""
    rest = url[len(scheme):]
    rest = rest.split("@", 1)[1] if "@" in rest else rest
    hosts, _, path = rest.partition("/")
    out = []
    for h in hosts.split(","):
        host, _, port = h.rpartition(":")
        out.append((host, int(port)) if port.isdigit() else (h, None))
    return out, path


def hookq_command(svc, helps):
    """The `hookq ...` command a compose service runs (the longest --help key its
    argv starts with), or None when it does not run the hookq image."""
    if not str(svc.get("image", "")).startswith("hookq") and not svc.get("build"):
        return None
    ep = svc.get("entrypoint")
    if ep not in (None, ["hookq"]):
        return None
    argv = [str(x) for x in svc.get("command") or ["worker"]]
    for n in range(len(argv), 0, -1):
        if " ".join(argv[:n]) in helps:
            return " ".join(argv[:n])
    return argv[0]


def check_compose_profiles(a, helps, probs):
    import yaml
    rel = "deploy/docker-compose.yml"
    with open(os.path.join(a.src, rel), encoding="utf-8") as f:
        svcs = (yaml.safe_load(f) or {}).get("services", {})
    profiles = {n: set(s.get("profiles") or []) for n, s in svcs.items()}
    for name, s in svcs.items():
        cmd = hookq_command(s, helps)
        if cmd is not None:
            readable = env_of(helps, cmd)
            if not readable:
                probs.add(f"{rel}: service {name} runs `hookq {cmd}`, whose --help lists no "
                          f"[env HOOKQ_*] option")
            for var in (s.get("environment") or {}):
                if readable and var not in readable:
                    probs.add(f"{rel}: service {name} sets {var}, which `hookq {cmd}` does "
                              f"not read")
        deps = s.get("depends_on") or {}
        for dep in (deps if isinstance(deps, (dict, list)) else []):
            if dep not in svcs:
                probs.add(f"{rel}: service {name} depends on {dep}, which is not a service")
            elif profiles[name] and profiles[dep] and not profiles[name] & profiles[dep]:
                probs.add(f"{rel}: service {name} (profile {sorted(profiles[name])}) depends on "
                          f"{dep}, which is in none of its profiles: `up` would fail")
            elif profiles[name] & {"cluster", "sentinel"} and not profiles[dep]:
                probs.add(f"{rel}: service {name} (profile {sorted(profiles[name])}) depends on "
                          f"{dep} of the default stack: starting it would start the single "
                          f"Redis stack too")
    default_hookq = [n for n, s in svcs.items() if not profiles[n] and
                     hookq_command(s, helps) in ("worker", "scheduler")]
    for name in default_hookq:
        url = str((svcs[name].get("environment") or {}).get("HOOKQ_REDIS_URL", ""))
        if not url.startswith("redis://"):
            probs.add(f"{rel}: default-profile service {name} does not use a redis:// URL "
                      f"(the default stack is the untagged single Redis)")

    def profile_hookq(prof):
        return {n: s for n, s in svcs.items() if prof in profiles[n] and
                hookq_command(s, helps) in ("worker", "scheduler")}

    # -- cluster
    nodes = {n: " ".join(map(str, s.get("command") or [])) for n, s in svcs.items()
             if "cluster" in profiles[n] and str(s.get("image", "")).startswith("redis")
             and "--cluster-enabled" in " ".join(map(str, s.get("command") or []))}
    if len(nodes) != 6:
        probs.add(f"{rel}: profile cluster has {len(nodes)} cluster-enabled redis nodes, not 6 "
                  f"(3 primaries + 3 replicas)")
    for n, c in sorted(nodes.items()):
        for want in ("--cluster-enabled yes", "--cluster-require-full-coverage no",
                     "--appendonly yes"):
            if want not in c:
                probs.add(f"{rel}: cluster node {n} is not started with {want}")
        if not re.search(r"--cluster-node-timeout \d+", c):
            probs.add(f"{rel}: cluster node {n} sets no --cluster-node-timeout")
    vols = {}
    for n in nodes:
        for v in svcs[n].get("volumes") or []:
            if str(v).split(":")[1:2] == ["/data"]:
                vols.setdefault(str(v).split(":")[0], []).append(n)
    for v, users in vols.items():
        if len(users) > 1:
            probs.add(f"{rel}: cluster nodes {', '.join(sorted(users))} share volume {v} "
                      f"(each node's nodes.conf must be its own)")
    if nodes and len(vols) != len(nodes):
        probs.add(f"{rel}: not every cluster node keeps /data in a volume of its own "
                  f"(a restarted node would forget the cluster)")
    inits = {n: s for n, s in svcs.items() if "cluster" in profiles[n] and
             "--cluster create" in json.dumps(s.get("command") or s.get("entrypoint") or "")}
    if len(inits) != 1:
        probs.add(f"{rel}: profile cluster has {len(inits)} services running "
                  f"`redis-cli --cluster create`, not 1")
    for n, s in inits.items():
        text = "\n".join(map(str, s.get("command") or []))
        for want in ("--cluster-replicas 1", "--cluster-yes"):
            if want not in text:
                probs.add(f"{rel}: {n} does not pass {want}")
        if "cluster_state:ok" not in text.split("--cluster create")[0]:
            probs.add(f"{rel}: {n} does not check CLUSTER INFO's cluster_state:ok before "
                      f"creating (it must be idempotent: a second `up` must not fail)")
        for node in nodes:
            if not re.search(r"(?<![\w-])" + re.escape(node) + r"(?![\w-])", text):
                probs.add(f"{rel}: {n} does not name cluster node {node}")
    workers = profile_hookq("cluster")
    if {hookq_command(s, helps) for s in workers.values()} != {"worker", "scheduler"}:
        probs.add(f"{rel}: profile cluster does not run both a worker and a scheduler")
    for n, s in sorted(workers.items()):
        url = str((s.get("environment") or {}).get("HOOKQ_REDIS_URL", ""))
        if not url.startswith("redis-cluster://"):
            probs.add(f"{rel}: {n}: HOOKQ_REDIS_URL '{url}' is not a redis-cluster:// URL")
            continue
        hosts, path = url_hosts(url, "redis-cluster://")
        for host, port in hosts:
            if host not in nodes or port != 6379:
                probs.add(f"{rel}: {n}: seed {host}:{port} is not a cluster node of the "
                          f"profile on port 6379")
        if path not in ("", "0"):
            probs.add(f"{rel}: {n}: a Redis Cluster has only db 0 (URL names /{path})")
        ok, msg = url_kind(a.bin, url)
        if not ok or "cluster" not in msg.lower():
            probs.add(f"{rel}: {n}: `hookq` does not take '{url}' as a cluster URL: {msg}")
        for init in inits:
            cond = ((s.get("depends_on") or {}).get(init) or {}).get("condition")
            if cond != "service_completed_successfully":
                probs.add(f"{rel}: {n} does not wait for {init} to complete successfully")

    # -- sentinel (optional profile; checked when present)
    sworkers = profile_hookq("sentinel")
    sentinels = {n for n, s in svcs.items() if "sentinel" in profiles[n] and
                 "--sentinel" in json.dumps(s.get("command") or "")}
    if sworkers and len(sentinels) < 3:
        probs.add(f"{rel}: profile sentinel runs {len(sentinels)} sentinels, fewer than 3 "
                  f"(a majority must survive one loss)")
    for n, s in sorted(sworkers.items()):
        url = str((s.get("environment") or {}).get("HOOKQ_REDIS_URL", ""))
        if not url.startswith("redis-sentinel://"):
            probs.add(f"{rel}: {n}: HOOKQ_REDIS_URL '{url}' is not a redis-sentinel:// URL")
            continue
        hosts, path = url_hosts(url, "redis-sentinel://")
        for host, port in hosts:
            if host not in sentinels or port != 26379:
                probs.add(f"{rel}: {n}: {host}:{port} is not a sentinel of the profile on "
                          f"port 26379")
        master = path.split("/")[0]
        data_nodes = {d for d, ds in svcs.items() if "sentinel" in profiles[d] and
                      d not in sentinels and str(ds.get("image", "")).startswith("redis")}
        for sn in sorted(sentinels):
            conf, err = sentinel_conf(a.src, svcs[sn])
            if err:
                probs.add(f"{rel}: sentinel {sn}: {err}")
                continue
            mon = re.search(r"(?m)^sentinel monitor (\S+) (\S+) (\d+) (\d+)\s*$", conf)
            if not mon:
                probs.add(f"{rel}: sentinel {sn}: its config has no 'sentinel monitor' line")
                continue
            name, host, port, quorum = mon.group(1), mon.group(2), int(mon.group(3)), \
                int(mon.group(4))
            if name != master:
                probs.add(f"{rel}: {n}: master '{master}' is not '{name}', the name sentinel "
                          f"{sn} monitors")
            if host not in data_nodes or port != 6379:
                probs.add(f"{rel}: sentinel {sn} monitors {host}:{port}, not a data node of the "
                          f"profile on 6379")
            if not re.match(r"[\d.]+$", host) and not re.search(
                    r"(?m)^sentinel resolve-hostnames yes\s*$", conf[:mon.start()]):
                probs.add(f"{rel}: sentinel {sn} monitors host name {host} without "
                          f"'sentinel resolve-hostnames yes' before it (Sentinel refuses it)")
            if not len(sentinels) // 2 < quorum <= len(sentinels):
                probs.add(f"{rel}: sentinel {sn}: quorum {quorum} is not a majority of "
                          f"{len(sentinels)} sentinels")
        ok, msg = url_kind(a.bin, url)
        if not ok or "sentinel" not in msg.lower():
            probs.add(f"{rel}: {n}: `hookq` does not take '{url}' as a sentinel URL: {msg}")


def sentinel_conf(src, svc):
    """The config file a compose sentinel service writes at start: its shell
    command run here with its bind mounts and volumes mapped to a temporary
    directory, up to (not including) the exec of redis-server. (text, error)."""
    script = "\n".join(map(str, svc.get("command") or [])).replace("$$", "$")
    m = re.search(r"(?m)^\s*exec redis-server (\S+) --sentinel\s*$", script)
    if not m:
        return None, "its command does not end with `exec redis-server <conf> --sentinel`"
    conf = m.group(1)
    with tempfile.TemporaryDirectory(prefix="hq-sentinel-") as tmp:
        for i, v in enumerate(svc.get("volumes") or []):
            host, cont = str(v).split(":")[0:2]
            if host.startswith("."):
                where = os.path.join(src, "deploy", host)
            else:
                where = os.path.join(tmp, f"vol{i}")
                os.mkdir(where)
            script = script.replace(cont, where)
            conf = conf.replace(cont, where)
        script = re.sub(r"(?m)^\s*exec redis-server .*$", "", script)
        p = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=20)
        if p.returncode != 0:
            return None, f"its start script failed here: {p.stderr.strip()}"
        try:
            with open(conf, encoding="utf-8") as f:
                return f.read(), None
        except OSError as e:
            return None, f"its start script wrote no {m.group(1)}: {e.strerror}"


FORMULA_SUM_RE = re.compile(r"\s*[A-Za-z_]\w*(\s*\+\s*[A-Za-z_]\w*)*\s*")


def check_scaledobjects(a, probs):
    yaml = load_yaml_module()
    k8s = os.path.join(a.src, "deploy", "k8s")
    overlays = sorted(os.path.basename(os.path.dirname(p)) for p in
                      glob.glob(os.path.join(k8s, "*", "kustomization.yaml")))
    seen_cluster = False
    for ov in overlays:
        if ov == "base":
            continue
        where = f"deploy/k8s/{ov}"
        try:
            docs = load_overlay(a.src, ov)
        except RuntimeError as e:
            probs.add(f"{where}: kubectl kustomize: {e}")
            continue
        cm = find(docs, "ConfigMap", "hookq-config") or {}
        prefix = (cm.get("data") or {}).get("HOOKQ_PREFIX", "hookq")
        if prefix != a.prefix:
            probs.add(f"{where}: ConfigMap HOOKQ_PREFIX '{prefix}' is not '{a.prefix}'")
        for so in (d for d in docs if d.get("kind") == "ScaledObject"):
            spec = so.get("spec", {})
            trig = spec.get("triggers") or []
            cl = [t for t in trig if t.get("type") == "redis-cluster-streams"]
            formula = ((spec.get("advanced") or {}).get("scalingModifiers") or {})
            if len(trig) > 1 and not formula.get("formula"):
                probs.add(f"{where}: ScaledObject has {len(trig)} triggers and no "
                          f"advanced.scalingModifiers.formula: KEDA would scale on the largest "
                          f"one alone")
            if not cl:
                continue
            seen_cluster = True
            if len(cl) != len(trig):
                probs.add(f"{where}: ScaledObject mixes redis-cluster-streams with other triggers")
            names = [t.get("name") for t in cl]
            P = len(cl)
            if names != [f"p{i}" for i in range(P)]:
                probs.add(f"{where}: trigger names {names} are not p0..p{P - 1} in order")
            f = str(formula.get("formula", ""))
            used = re.findall(r"[A-Za-z_]\w*", f)
            if not FORMULA_SUM_RE.fullmatch(f):
                probs.add(f"{where}: formula '{f}' is not a plain sum of trigger names")
            if sorted(used) != sorted(n for n in names if n):
                probs.add(f"{where}: formula '{f}' does not name each trigger exactly once "
                          f"(triggers: {', '.join(str(n) for n in names)})")
            if formula.get("metricType") != "AverageValue":
                probs.add(f"{where}: scalingModifiers.metricType is not AverageValue (the "
                          f"backlog is shared by the replicas)")
            if not re.fullmatch(r"\d+", str(formula.get("target", ""))):
                probs.add(f"{where}: scalingModifiers.target is not a number of entries")
            tags = partition_tags(P)
            for i, t in enumerate(cl):
                md = t.get("metadata") or {}
                want = f"{a.prefix}:{{{tags[i]}}}:events"
                if md.get("stream") != want:
                    probs.add(f"{where}: trigger {t.get('name')}: stream '{md.get('stream')}' is "
                              f"not '{want}' (partition {i} of P = {P}, "
                              f"docs/internals/partitions.md)")
                if md.get("consumerGroup") != a.group:
                    probs.add(f"{where}: trigger {t.get('name')}: consumerGroup "
                              f"'{md.get('consumerGroup')}' is not '{a.group}'")
                if "lagCount" not in md:
                    probs.add(f"{where}: trigger {t.get('name')}: no lagCount")
                addrs = str(md.get("addresses", ""))
                if not addrs or any(not re.fullmatch(r"[\w.-]+:\d+", x.strip())
                                    for x in addrs.split(",")):
                    probs.add(f"{where}: trigger {t.get('name')}: addresses '{addrs}' is not a "
                              f"host:port list")
            if any(d.get("kind") == "HorizontalPodAutoscaler" for d in docs) and \
                    shutil.which("kubectl"):
                probs.add(f"{where}: the rendered overlay still has the CPU HPA")
    if not seen_cluster:
        probs.add("deploy/k8s: no overlay scales on redis-cluster-streams triggers "
                  "(deploy/k8s/keda-cluster)")
    # The prometheus alternative: a file kubectl does not apply, parsed here.
    for path in sorted(glob.glob(os.path.join(k8s, "*", "*.yaml.example"))):
        rel = os.path.relpath(path, a.src)
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for so in (d for d in docs if d.get("kind") == "ScaledObject"):
            if so.get("spec", {}).get("scaleTargetRef", {}).get("name") != "hookq-worker":
                probs.add(f"{rel}: ScaledObject does not target hookq-worker")
            for t in so.get("spec", {}).get("triggers") or []:
                q = str((t.get("metadata") or {}).get("query", ""))
                if t.get("type") == "prometheus" and re.search(r"sum\s*\(\s*hookq_stream_lag", q):
                    probs.add(f"{rel}: query '{q}' sums hookq_stream_lag over workers; each "
                              f"worker reports the whole backlog, so the sum grows with the "
                              f"replicas it scales")


def check_partitioned(a):
    """Deployment files for the partitioned layout agree with the code: the
    compose profiles' URLs parse (by the binary) and point at the profile's
    nodes, every hookq service sets only variables its command reads, the
    cluster ScaledObjects name each partition's stream with the tag of the
    partition rule and sum exactly their triggers, and every tag list written
    in deploy/ and docs/scaling.md is the rule's for its length."""
    if load_yaml_module() is None:
        return skip("python3 has no yaml module (Debian package python3-yaml)")
    probs = Problems()
    # The Python rule must be common/partition.c's: the C test passes its tags.
    for spec in a.c_tags or []:
        P, _, tags = spec.partition(":")
        if partition_tags(int(P)) != tags.split(","):
            probs.add(f"tests/deploy/check_deploy.py: partition_tags({P}) = "
                      f"{','.join(partition_tags(int(P)))}, common/partition.c says {tags}")
    if probs.lines:
        return probs.finish("partitioned")
    helps = all_help(a.bin, probs)
    check_compose_profiles(a, helps, probs)
    check_scaledobjects(a, probs)
    files = [p for p, _ in text_files(os.path.join(a.src, "deploy"))]
    files += [os.path.join(a.src, "docs", d) for d in ("scaling.md", "operations.md")]
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for n, line in enumerate(lines, 1):
            for lst in TAG_LIST_RE.findall(line):
                tags = lst.split(",")
                if tags != partition_tags(len(tags)):
                    probs.add(f"{os.path.relpath(path, a.src)}:{n}: tags {lst} are not those of "
                              f"P = {len(tags)} ({','.join(partition_tags(len(tags)))})")
    return probs.finish("partitioned")


# Lines every unit must have: restart and stop behaviour, a
# dedicated user, and the sandbox.
UNIT_MUST = [
    r"Restart=on-failure", r"KillSignal=SIGTERM", r"TimeoutStopSec=\d+s?",
    r"(DynamicUser=yes|User=hookq)", r"ProtectSystem=strict", r"ProtectHome=yes",
    r"NoNewPrivileges=yes", r"PrivateTmp=yes", r"PrivateDevices=yes",
    r"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", r"CapabilityBoundingSet=",
    r"SystemCallFilter=@system-service", r"MemoryDenyWriteExecute=yes",
    r"EnvironmentFile=/etc/hookq/hookq\.env",
]


def check_systemd(a):
    """systemd-analyze verify and an offline security review of the units.

    verify insists that ExecStart's binary exists, so the units are copied to a
    temporary directory with /usr/local/bin/hookq pointed at the built binary;
    nothing else is changed. Any line verify prints is a problem (it reports
    unknown keys as warnings with exit status 0)."""
    sa = shutil.which("systemd-analyze")
    if not sa:
        return skip("systemd-analyze is not installed (Debian package systemd)")
    probs = Problems()
    src_dir = os.path.join(a.src, "deploy", "systemd")
    with tempfile.TemporaryDirectory(prefix="hq-units-") as tmp:
        units = []
        for path in sorted(glob.glob(os.path.join(src_dir, "*.service"))):
            with open(path, encoding="utf-8") as f:
                text = f.read().replace("/usr/local/bin/hookq", os.path.abspath(a.bin))
            name = os.path.basename(path)
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write(text)
            units.append(name)
            if name.endswith("@.service"):
                inst = name.replace("@.service", "@1.service")
                shutil.copy(os.path.join(tmp, name), os.path.join(tmp, inst))
                units.append(inst)
        if not units:
            probs.add("deploy/systemd: no .service files")
        for name in units:
            if "@1." in name:
                continue
            with open(os.path.join(tmp, name), encoding="utf-8") as f:
                text = f.read()
            for want in UNIT_MUST:
                if not re.search(r"(?m)^" + want + r"\s*$", text):
                    probs.add(f"deploy/systemd/{name}: no line matching '{want}'")
        for name in units:
            p = subprocess.run([sa, "verify", "--man=no", os.path.join(tmp, name)],
                               capture_output=True, text=True, timeout=60, cwd=tmp)
            out = (p.stdout + p.stderr).strip()
            if p.returncode != 0 or out:
                probs.add(f"deploy/systemd/{name}: systemd-analyze verify: "
                          f"{out or 'exit ' + str(p.returncode)}")
            if "@.service" in name:
                continue  # a template is reviewed through its instance
            p = subprocess.run([sa, "security", "--offline=true", f"--threshold={a.threshold}",
                                os.path.join(tmp, name)], capture_output=True, text=True,
                               timeout=60, cwd=tmp)
            level = re.search(r"Overall exposure level for \S+: ([\d.]+)", p.stdout)
            if p.returncode != 0 or not level:
                probs.add(f"deploy/systemd/{name}: exposure level "
                          f"{level.group(1) if level else '?'} above {a.threshold / 10:g} "
                          f"(systemd-analyze security --offline=true)")
            else:
                print(f"{name}: exposure {level.group(1)}")
    return probs.finish("systemd")


def check_metric_names(a):
    """Every hookq_* series in alerts.yml and the dashboard is one the worker serves."""
    probs = Problems()
    with open(a.metrics, encoding="utf-8") as f:
        scraped = f.read()
    families = set(re.findall(r"(?m)^# TYPE (hookq_[a-z0-9_]+) ", scraped))
    if not families:
        probs.add(f"{a.metrics}: no '# TYPE hookq_...' lines: is this /metrics output?")
        return probs.finish("metric-names")
    series = set(families)
    for fam in families:
        series |= {fam + s for s in ("_bucket", "_sum", "_count")}
    labels = {}  # family -> {label: values}
    for name, lbls in re.findall(r"(?m)^(hookq_[a-z0-9_]+)\{([^}]*)\}", scraped):
        for k, v in re.findall(r'([a-z_]+)="([^"]*)"', lbls):
            labels.setdefault(name, {}).setdefault(k, set()).add(v)
    for rel in ("deploy/prometheus/alerts.yml", "deploy/prometheus/grafana-dashboard.json"):
        with open(os.path.join(a.src, rel), encoding="utf-8") as f:
            text = f.read()
        used = set(re.findall(r"\bhookq_[a-z0-9_]+", text))
        if not used:
            probs.add(f"{rel}: uses no hookq_* metric")
        for name in sorted(used - series):
            probs.add(f"{rel}: {name} is not served by the worker's /metrics")
        # Label values used in selectors, e.g. outcome="dead" or outcome=~"retry|dead".
        for name, sel in re.findall(r"\b(hookq_[a-z0-9_]+)\{([^}]*)\}", text):
            for k, op, v in re.findall(r'([a-z_]+)\s*(=~|=)\s*\\?"([^"\\]*)\\?"', sel):
                have = labels.get(name, {}).get(k)
                if have is None:
                    probs.add(f"{rel}: {name} has no label '{k}'")
                    continue
                for val in (v.split("|") if op == "=~" else [v]):
                    if val not in have:
                        probs.add(f"{rel}: {name}{{{k}=\"{val}\"}} never appears "
                                  f"(values: {', '.join(sorted(have))})")
    yaml = load_yaml_module()
    # KEDA prometheus triggers (the keda-cluster alternative): their queries
    # only; comments may name metrics still to come.
    if yaml is not None:
        for path in sorted(glob.glob(os.path.join(a.src, "deploy", "k8s", "*", "*.yaml*"))):
            rel = os.path.relpath(path, a.src)
            with open(path, encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
            for d in docs:
                if d.get("kind") != "ScaledObject":
                    continue
                for t in d.get("spec", {}).get("triggers") or []:
                    q = str((t.get("metadata") or {}).get("query", ""))
                    if t.get("type") != "prometheus":
                        continue
                    used = set(re.findall(r"\bhookq_[a-z0-9_]+", q))
                    if not used:
                        probs.add(f"{rel}: prometheus trigger query '{q}' uses no hookq_* metric")
                    for name in sorted(used - series):
                        probs.add(f"{rel}: {name} is not served by the worker's /metrics")
    if yaml is not None:
        with open(os.path.join(a.src, "deploy/prometheus/alerts.yml"), encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        rules = [r for g in doc.get("groups", []) for r in g.get("rules", [])]
        if not rules:
            probs.add("deploy/prometheus/alerts.yml: no rules")
        for r in rules:
            if not r.get("alert") or not r.get("expr"):
                probs.add(f"deploy/prometheus/alerts.yml: rule without alert or expr: {r}")
            elif not r.get("labels", {}).get("severity") or \
                    not r.get("annotations", {}).get("summary"):
                probs.add(f"deploy/prometheus/alerts.yml: {r['alert']}: no severity or summary")
    return probs.finish("metric-names")


def check_image_libs(a):
    """The runtime stage installs the package of every shared library `hookq`
    needs, and the build stage the -dev package of every pkg-config module the
    build asks for. Reads the built binary and this machine's dpkg database
    (Debian bookworm, like the image)."""
    for tool in ("readelf", "dpkg", "ldd", "pkg-config"):
        if not shutil.which(tool):
            return skip(f"{tool} is not installed")
    probs = Problems()
    df = dockerfile(a.src)
    stages = re.split(r"(?m)^FROM\s", df)

    def apt_pkgs(stage):
        pk = set()
        for m in re.finditer(r"apt-get install([^&\n]*)", stage):
            pk |= {w for w in m.group(1).split() if not w.startswith("-")}
        return pk

    build_pkgs, rt_pkgs = apt_pkgs(stages[1]), apt_pkgs(stages[-1])
    base = {"libc6", "libgcc-s1", "zlib1g"}  # in every debian:bookworm-slim image
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                        subprocess.run(["readelf", "-d", a.bin], capture_output=True,
                                       text=True).stdout)
    ldd = subprocess.run(["ldd", a.bin], capture_output=True, text=True).stdout
    paths = dict(re.findall(r"(?m)^\s*(\S+) => (\S+)", ldd))
    # The dynamic loader is listed by path alone ("/lib64/ld-linux-x86-64.so.2 (0x...)");
    # it is NEEDED once any code uses thread-local storage (common/sign.c does).
    for m in re.finditer(r"(?m)^\s*(/\S+) \(0x", ldd):
        paths.setdefault(os.path.basename(m.group(1)), m.group(1))
    if not needed:
        probs.add(f"{a.bin}: readelf lists no NEEDED libraries")
    for lib in needed:
        if re.match(r"lib(asan|ubsan|lsan|tsan)\.so", lib):
            continue  # a sanitizer build's runtime: the image is built without sanitizers
        path = paths.get(lib)
        if not path:
            probs.add(f"{a.bin}: ldd does not resolve {lib}")
            continue
        owner = dpkg_owner(path)
        if owner is None:
            probs.add(f"{path}: no Debian package owns it ({lib})")
        elif owner not in rt_pkgs and owner not in base:
            probs.add(f"deploy/Dockerfile: runtime stage lacks {owner} (provides {lib})")
    with open(os.path.join(a.src, "CMakeLists.txt"), encoding="utf-8") as f:
        cm = f.read()
    modules = re.findall(r"pkg_check_modules\(\w+ REQUIRED IMPORTED_TARGET ([A-Za-z0-9_.+-]+?)(?:[<>=].*)?\)",
                         cm)
    if "find_package(OpenSSL" in cm:
        modules.append("openssl")
    for mod in modules:
        p = subprocess.run(["pkg-config", "--path", mod], capture_output=True, text=True)
        owner = dpkg_owner(p.stdout.strip()) if p.returncode == 0 else None
        if owner is None:
            probs.add(f"pkg-config module {mod}: cannot find its package here")
        elif owner not in build_pkgs:
            probs.add(f"deploy/Dockerfile: build stage lacks {owner} (pkg-config {mod})")
    if "cmake" not in build_pkgs:
        probs.add("deploy/Dockerfile: build stage does not install cmake")
    return probs.finish("image-libs")


def dpkg_owner(path):
    for cand in (path, os.path.realpath(path), path.replace("/usr/lib/", "/lib/", 1)):
        p = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
        if p.returncode == 0:
            return p.stdout.split(":", 1)[0].strip()
    return None


def check_healthcheck(a):
    """Runs the Dockerfile's HEALTHCHECK command against a live /healthz and
    compares its exit status with the expectation (--expect ok|fail)."""
    if not shutil.which("bash"):
        return skip("bash is not installed")
    cmd = healthcheck_cmd(runtime_stage(dockerfile(a.src)))
    if not cmd:
        print("deploy/Dockerfile: no HEALTHCHECK CMD [...]")
        return 1
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOOKQ_METRICS": a.metrics_addr}
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=10)
    ok = p.returncode == 0
    if ok != (a.expect == "ok"):
        print(f"deploy/Dockerfile HEALTHCHECK against {a.metrics_addr}: exit {p.returncode}, "
              f"expected {'0' if a.expect == 'ok' else 'non-zero'} {p.stderr.strip()}")
        return 1
    print(f"healthcheck: exit {p.returncode} as expected ({a.expect})")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", required=True)
    ap.add_argument("--bin", required=True)
    sub = ap.add_subparsers(dest="check", required=True)
    sub.add_parser("env-known")
    sub.add_parser("options-documented")
    sub.add_parser("yaml")
    c = sub.add_parser("consistency")
    c.add_argument("--port", type=int, default=9090)
    c.add_argument("--prefix", default="hookq")
    c.add_argument("--events-key", required=True)
    c.add_argument("--group", required=True)
    s = sub.add_parser("systemd")
    s.add_argument("--threshold", type=int, default=15, help="exposure x10 (systemd scale)")
    m = sub.add_parser("metric-names")
    m.add_argument("--metrics", required=True, help="a file holding /metrics output")
    pt = sub.add_parser("partitioned")
    pt.add_argument("--prefix", default="hookq")
    pt.add_argument("--group", required=True)
    pt.add_argument("--c-tags", action="append", metavar="P:T0,T1,...",
                    help="common/partition.c's tags for P partitions (repeatable)")
    sub.add_parser("image-libs")
    h = sub.add_parser("healthcheck")
    h.add_argument("--metrics-addr", required=True)
    h.add_argument("--expect", choices=("ok", "fail"), required=True)
    a = ap.parse_args()
    fn = {"env-known": check_env_known, "options-documented": check_options_documented,
          "yaml": check_yaml, "consistency": check_consistency, "systemd": check_systemd,
          "metric-names": check_metric_names, "image-libs": check_image_libs,
          "healthcheck": check_healthcheck, "partitioned": check_partitioned}[a.check]
    return fn(a)


if __name__ == "__main__":
    sys.exit(main())
