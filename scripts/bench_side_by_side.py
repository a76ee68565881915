#!/usr/bin/env python3
"""plugboard's hot paths beside the two bare servers of bench/baselines.

scripts/bench-side-by-side.sh runs this; see its header for the usage. One
run builds the baselines, plugboard and the bundled plugins, starts them, seeds
plugboard through its GraphQL API, then runs wrk (-t2 -c50) against every row
in interleaved rounds and prints the medians with their ratios.
"""

import base64
import concurrent.futures
import http.server
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASANA_KEY = "2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef"
ALIASES = 25  # mutations per GraphQL request while seeding (the limit is 30)

# Rows in the order each round runs them: name, how it is reached.
ROWS = [
    "bare", "gqlgen", "connectionTypes",
    "runtime-read-apikey", "runtime-read-oauth",
    "wizard-admin", "wizard-customer",
    "saveCredential", "credentials-page",
]
PLUGBOARD_ROWS = ROWS[2:]


def log(*args):
    print("==>", *args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bench:
    def __init__(self, work, rounds, duration, pg_url):
        self.work, self.rounds, self.duration, self.pg_url = work, rounds, duration, pg_url
        self.procs, self.bench_db = [], None
        self.db_name = "PostgreSQL" if pg_url else "SQLite"

    # ---- processes -------------------------------------------------------

    def run(self, *cmd, cwd=ROOT, **kw):
        subprocess.run(cmd, cwd=cwd, check=True, **kw)

    def build(self):
        log("building the baselines, plugboard and the bundled plugins into", self.work)
        b = os.path.join(self.work, "bin")
        self.plugins = os.path.join(self.work, "plugins")
        os.makedirs(b)
        os.makedirs(self.plugins)
        self.run("go", "build", "-o", f"{b}/bareserver", ".", cwd=f"{ROOT}/bench/baselines/bare")
        self.run("go", "build", "-o", f"{b}/gqlserver", "./cmd/server", cwd=f"{ROOT}/bench/baselines/gql")
        self.run("go", "build", "-o", f"{b}/plugboard", "./cmd/plugboard")
        self.run("go", "build", "-o", self.plugins + "/", "./plugins/...")
        self.run(f"{b}/plugboard", "plugins", "pin", "--plugin-dir", self.plugins,
                 *sorted(os.listdir(self.plugins)), stdout=subprocess.DEVNULL)
        self.bin = b

    def start(self, name, *cmd):
        out = open(os.path.join(self.work, name + ".log"), "w")
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        self.procs.append(p)
        return p

    def wait_ready(self, url):
        for _ in range(600):
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"bench-side-by-side: {url} never answered 200")

    def create_pg_database(self):
        name = "pbbench_%d" % os.getpid()
        subprocess.run(["psql", "-q", self.pg_url, "-c", f"CREATE DATABASE {name}"], check=True)
        self.bench_db = name
        u = urllib.parse.urlsplit(self.pg_url)
        return urllib.parse.urlunsplit(u._replace(path="/" + name))

    def start_servers(self):
        self.ports = {k: free_port() for k in ("bare", "gqlgen", "plugboard", "pprof")}
        self.start("bare", f"{self.bin}/bareserver", "-addr", f"127.0.0.1:{self.ports['bare']}")
        self.start("gqlgen", f"{self.bin}/gqlserver", "-addr", f"127.0.0.1:{self.ports['gqlgen']}")
        args = [f"{self.bin}/plugboard", "serve", "--dev", "--data-dir", os.path.join(self.work, "data"),
                "--plugin-dir", self.plugins, "--addr", f"127.0.0.1:{self.ports['plugboard']}",
                "--pprof-addr", f"127.0.0.1:{self.ports['pprof']}"]
        if self.pg_url:
            args += ["--database", self.create_pg_database()]
        self.plugboard = self.start("plugboard", *args)
        self.base = f"http://127.0.0.1:{self.ports['plugboard']}"
        self.wait_ready(self.base + "/readyz")

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.bench_db:
            subprocess.run(["psql", "-q", self.pg_url, "-c", f"DROP DATABASE IF EXISTS {self.bench_db} WITH (FORCE)"])

    # ---- GraphQL ---------------------------------------------------------

    def gql(self, query, token=None, variables=None):
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(self.base + "/graphql", body, {"Content-Type": "application/json"})
        if token:
            req.add_header("Authorization", "Bearer " + token)
        with urllib.request.urlopen(req, timeout=120) as r:
            answer = json.load(r)
        if answer.get("errors"):
            raise SystemExit(f"bench-side-by-side: {answer['errors']}\n{query[:300]}")
        return answer["data"]

    def gql_many(self, mutations):
        """Runs mutations ALIASES to a request, 3 requests at a time; returns
        each one's answer."""
        def run(part):
            data = self.gql("mutation {\n" + "\n".join(f"m{j}: {m}" for j, m in enumerate(part)) + "\n}")
            return [data[f"m{j}"] for j in range(len(part))]
        parts = [mutations[i:i + ALIASES] for i in range(0, len(mutations), ALIASES)]
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            return [a for answers in pool.map(run, parts) for a in answers]

    def customers(self, prefix, n):
        answers = self.gql_many([
            f'createCustomer(input: {{ externalID: "{prefix}{i}", name: "{prefix} {i}" }}) {{ customer {{ id }} }}'
            for i in range(n)])
        return [a["customer"]["id"] for a in answers]

    def connection(self, type_key, stable_key, scope):
        d = self.gql(f'mutation {{ createConnection(input: {{ typeKey: "{type_key}", stableKey: "{stable_key}", '
                     f'name: "{stable_key}", scope: {scope} }}) {{ connection {{ id }} }} }}')
        return d["createConnection"]["connection"]["id"]

    def save_many(self, conn, customer_ids, values):
        vals = ", ".join(f'{{ key: "{k}", value: {json.dumps(v)} }}' for k, v in values.items())
        answers = self.gql_many([
            f'saveCredential(input: {{ connectionID: "{conn}", customerID: "{c}", values: [{vals}] }}) '
            f'{{ credential {{ id status }} userErrors {{ message }} }}' for c in customer_ids])
        for a in answers:
            if not a["credential"] or a["credential"]["status"] != "ACTIVE":
                raise SystemExit(f"bench-side-by-side: a save did not make an ACTIVE credential: {a}")
        return [a["credential"]["id"] for a in answers]

    # ---- seeding ---------------------------------------------------------

    def seed(self, save_customers, page_customers):
        log("seeding: a customer, API key and OAuth 2.0 credentials, a RUNTIME token")
        self.customer = self.customers("bench", 1)[0]
        self.runtime_token = self.gql('mutation { createAPIToken(input: { role: RUNTIME, name: "bench" }) { token } }')[
            "createAPIToken"]["token"]
        asana = self.connection("asana.apiKey", "asana", "CUSTOMER")
        self.apikey_cred = self.save_many(asana, [self.customer], {"apiKey": ASANA_KEY})[0]
        graph = self.connection("msgraph.clientCredentials", "graph", "CUSTOMER")
        self.oauth_cred = self.save_many(graph, [self.customer], {
            "tenant": "contoso.onmicrosoft.com", "clientId": "00000000-0000-0000-0000-000000000001",
            "clientSecret": "bench-client-secret", "authorityHost": self.idp_url, "graphBaseUrl": self.idp_url})[0]
        self.seed_wizard()
        log(f"seeding: {save_customers} customers for saveCredential")
        self.save_conn = self.connection("asana.apiKey", "asana-save", "CUSTOMER")
        self.save_customers = self.customers("save", save_customers)
        self.save_many(self.save_conn, self.save_customers, {"apiKey": ASANA_KEY})
        per = int(os.environ.get("CREDENTIALS_PER_CUSTOMER", "1"))
        log(f"seeding: {page_customers} customers with {per} credential(s) each, for the credentials page")
        custs = self.customers("page", page_customers)
        for i in range(per):
            page_conn = self.connection("asana.apiKey", f"asana-page-{i}", "CUSTOMER")
            self.save_many(page_conn, custs, {"apiKey": ASANA_KEY})
            log(f"seeding: {(i + 1) * page_customers} credentials saved")

    def seed_wizard(self):
        """An integration with 5 slots, one of each scope, an instance of the
        bench customer, and an embedding token of the customer's user."""
        log("seeding: an integration with 5 connection slots, an instance, an embedding token")
        slots = [
            ("asana", "Asana", self.connection("asana.apiKey", "wiz-asana", "CUSTOMER")),
            ("slack", "Slack", None),
            ("warehouse", "Warehouse", self.connection("postgres.basic", "wiz-pg", "ORGANIZATION_GLOBAL")),
            ("vendorAsana", "Vendor Asana", self.connection("asana.apiKey", "wiz-orgcust", "ORGANIZATION_CUSTOMER")),
            ("myAsana", "My Asana", self.connection("asana.apiKey", "wiz-user", "USER")),
        ]
        inputs = ", ".join(
            f'{{ key: "{k}", label: "{l}", ' + (f'connectionID: "{c}"' if c else 'typeKey: "slack.oauth2"') + " }"
            for k, l, c in slots)
        d = self.gql(f'mutation {{ createIntegration(input: {{ key: "wizard", name: "Wizard", slots: [{inputs}] }}) '
                     f'{{ integration {{ id }} userErrors {{ message }} }} }}')
        integ = d["createIntegration"]["integration"]["id"]
        d = self.gql(f'mutation {{ createInstance(input: {{ integrationID: "{integ}", customerID: "{self.customer}", '
                     f'name: "Bench wizard" }}) {{ instance {{ id }} userErrors {{ message }} }} }}')
        self.instance = d["createInstance"]["instance"]["id"]
        self.save_many(slots[0][2], [self.customer], {"apiKey": ASANA_KEY})
        self.admin_token = self.gql('mutation { createAPIToken(input: { role: ORG_ADMIN, name: "bench" }) { token } }')[
            "createAPIToken"]["token"]
        self.customer_token = self.embedding_token()

    def embedding_token(self):
        """An RS256 embedding JWT of user u1 of customer bench0, signed with
        a key registered for the default organization (openssl signs)."""
        key, pub = os.path.join(self.work, "embed.key"), os.path.join(self.work, "embed.pub")
        self.run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key,
                 stderr=subprocess.DEVNULL)
        self.run("openssl", "pkey", "-in", key, "-pubout", "-out", pub)
        self.gql('mutation($pem: String!) { registerSigningKey(input: { kid: "bench", algorithm: RS256, '
                 'publicKeyPEM: $pem }) { signingKey { id } } }', variables={"pem": open(pub).read()})

        def b64(raw):
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        now = int(time.time())
        head = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "bench"}).encode())
        claims = b64(json.dumps({"iss": "default", "aud": "plugboard", "sub": "u1", "customer": "bench0",
                                 "iat": now, "exp": now + 23 * 3600}).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=f"{head}.{claims}".encode(),
                             capture_output=True, check=True).stdout
        return f"{head}.{claims}.{b64(sig)}"

    # ---- wrk -------------------------------------------------------------

    def scripts(self):
        """Each row's URL, wrk script and a check of one answer."""
        def post(name, query, token=None, variables=None):
            path = os.path.join(self.work, name + ".lua")
            body = json.dumps({"query": query, "variables": variables or {}})
            auth = f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else ""
            with open(path, "w") as f:
                f.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n{auth}'
                        f"wrk.body = {lua_string(body)}\n")
            return path

        def get(name, token):
            path = os.path.join(self.work, name + ".lua")
            with open(path, "w") as f:
                f.write(f'wrk.method = "GET"\nwrk.headers["Authorization"] = "Bearer {token}"\n')
            return path

        gql = self.base + "/graphql"
        # The wizard query of the Go tests and benchmarks, taken from them.
        src = open(os.path.join(ROOT, "internal", "server", "wizard_test.go")).read()
        wizard = re.search(r"wizardQueryText = `([^`]*)`", src).group(1)
        page = ("query Credentials($first: Int!) { credentials(first: $first) { "
                "edges { node { id status values { key isSet } connection { stableKey } } } "
                "pageInfo { endCursor hasNextPage } } }")
        rt = self.base + "/runtime/v1/credentials/"
        return {
            "bare": (f"http://127.0.0.1:{self.ports['bare']}/graphql", os.path.join(ROOT, "bench/baselines/post.lua")),
            "gqlgen": (f"http://127.0.0.1:{self.ports['gqlgen']}/graphql", os.path.join(ROOT, "bench/baselines/post.lua")),
            "connectionTypes": (gql, post("types", "{ connectionTypes(first: 10) { edges { node { key label "
                                                   "description inputs { key label type required } } } } }")),
            "runtime-read-apikey": (rt + self.apikey_cred, get("apikey", self.runtime_token)),
            "runtime-read-oauth": (rt + self.oauth_cred, get("oauth", self.runtime_token)),
            "wizard-admin": (gql, post("wizard-admin", wizard, self.admin_token, {"id": self.instance})),
            "wizard-customer": (gql, post("wizard-customer", wizard, self.customer_token, {"id": self.instance})),
            "saveCredential": (gql, self.save_script()),
            "credentials-page": (gql, post("page", page, self.admin_token, {"first": 100})),
        }

    def save_script(self):
        """saveCredential of the asana API key (the plugin's Validate runs),
        each wrk thread cycling through its own half of the customers."""
        path = os.path.join(self.work, "save.lua")
        ids = ", ".join(f'"{c}"' for c in self.save_customers)
        with open(path, "w") as f:
            f.write(f'''local ids = {{ {ids} }}
local threads, n = 0, 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) n = 0 end
function request()
  local half = math.floor(#ids / 2)
  local id = ids[tid * half + (n % half) + 1]
  n = n + 1
  local body = '{{"query":"mutation($c: ID!) {{ saveCredential(input: {{ connectionID: \\\\"{self.save_conn}\\\\", ' ..
    'customerID: $c, values: [{{ key: \\\\"apiKey\\\\", value: \\\\"{ASANA_KEY}\\\\" }}] }}) ' ..
    '{{ credential {{ id status }} userErrors {{ message }} }} }}","variables":{{"c":"' .. id .. '"}}}}'
  return wrk.format("POST", nil, {{ ["Content-Type"] = "application/json", ["Authorization"] = "Bearer {self.admin_token}" }}, body)
end
''')
        return path

    def sample(self, name, url, script):
        """One answer of the row, by curl-like urllib, must be right."""
        if name in ("bare", "gqlgen"):
            return
        text = open(script).read()
        headers = dict(re.findall(r'wrk\.headers\["([^"]+)"\] = "([^"]*)"', text))
        m = re.search(r"wrk\.body = (.*)\n", text)
        body = lua_unstring(m.group(1)).encode() if m else None
        if name == "saveCredential":
            body = json.dumps({"query": f'mutation {{ saveCredential(input: {{ connectionID: "{self.save_conn}", '
                               f'customerID: "{self.save_customers[0]}", values: [{{ key: "apiKey", '
                               f'value: "{ASANA_KEY}" }}] }}) {{ credential {{ status }} userErrors {{ message }} }} }}'}).encode()
            headers = {"Content-Type": "application/json", "Authorization": "Bearer " + self.admin_token}
        req = urllib.request.Request(url, body, headers, method="POST" if body else "GET")
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read().decode()
        doc = json.loads(raw)
        if doc.get("errors") or doc.get("error") or '"userErrors":[{' in raw or (
                "data" in doc and not any(doc["data"].values())):
            raise SystemExit(f"bench-side-by-side: {name} answered an error: {raw[:500]}")

    def wrk(self, name, url, script):
        out = subprocess.run(["wrk", "-t2", "-c50", f"-d{self.duration}s", "--timeout", "10s", "--latency", "-s", script, url],
                             capture_output=True, text=True, check=True).stdout
        if "Non-2xx" in out or "Socket errors" in out:
            raise SystemExit(f"bench-side-by-side: {name} answered errors:\n{out}")
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
        return rps, p50

    def profile(self, name, profile_dir):
        """A CPU profile of plugboard while the row runs (last round)."""
        secs = max(1, self.duration - 2)
        url = f"http://127.0.0.1:{self.ports['pprof']}/debug/pprof/profile?seconds={secs}"

        def fetch():
            time.sleep(1)
            with urllib.request.urlopen(url, timeout=secs + 30) as r, \
                    open(os.path.join(profile_dir, f"{name}-{self.db_name.lower()}.pprof"), "wb") as f:
                shutil.copyfileobj(r, f)
        t = threading.Thread(target=fetch)
        t.start()
        return t

    def measure(self, profile_dir):
        rows = self.scripts()
        results = {k: [] for k in ROWS}
        only = os.environ.get("ROWS", "").split(",") if os.environ.get("ROWS") else ROWS
        for r in range(1, self.rounds + 1):
            log(f"round {r} of {self.rounds}")
            for name in ROWS:
                if name not in only and name not in ("bare", "gqlgen"):
                    continue
                url, script = rows[name]
                self.sample(name, url, script)
                prof = None
                if profile_dir and r == self.rounds and name in PLUGBOARD_ROWS:
                    prof = self.profile(name, profile_dir)
                rps, p50 = self.wrk(name, url, script)
                if prof:
                    prof.join()
                self.sample(name, url, script)
                results[name].append(rps)
                print(f"{name} {rps:.0f} req/s p50 {p50}", flush=True)
        return results

    def table(self, results):
        med = {k: statistics.median(v) for k, v in results.items() if v}
        print(f"\nmedians of {self.rounds} interleaved rounds (wrk -t2 -c50 -d{self.duration}s), {self.db_name}")
        print("| path | req/s | × bare net/http | × bare gqlgen | × runtime read (API key) |")
        print("|---|---|---|---|---|")
        for name in ROWS:
            if name in med:
                rr = med.get("runtime-read-apikey")
                ratio = f"{med[name] / rr:.2f}" if rr else "-"
                print(f"| {name} | {med[name]:,.0f} | {med[name] / med['bare']:.3f} | "
                      f"{med[name] / med['gqlgen']:.2f} | {ratio} |")


class Memory:
    """The resident memory of plugboard and its plugin processes, idle and
    under load, and its live heap after 1 minute and at the end of a mixed
    load (runtime reads, configWizard, saveCredential at once)."""

    def __init__(self, bench, minutes):
        self.b, self.minutes = bench, minutes

    def rss(self):
        """KiB resident: plugboard's own, and with every child process."""
        def vmrss(pid):
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
            return 0
        pid = self.b.plugboard.pid
        kids = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
        own = vmrss(pid)
        return own, own + sum(vmrss(int(k)) for k in kids), len(kids)

    def live_heap(self):
        """Bytes of live heap right after a forced GC (pprof's gc=1)."""
        url = f"http://127.0.0.1:{self.b.ports['pprof']}/debug/pprof/heap?gc=1&debug=1"
        with urllib.request.urlopen(url, timeout=60) as r:
            text = r.read().decode()
        return int(re.search(r"# HeapAlloc = (\d+)", text).group(1))

    def run(self):
        rows = self.b.scripts()
        time.sleep(10)
        own, total, kids = self.rss()
        print(f"idle: plugboard {own / 1024:.1f} MiB, with its {kids} plugin processes {total / 1024:.1f} MiB, "
              f"live heap {self.live_heap() / 2**20:.1f} MiB", flush=True)
        secs = self.minutes * 60
        load = []
        for name in ("runtime-read-apikey", "wizard-admin", "saveCredential"):
            url, script = rows[name]
            load.append(subprocess.Popen(["wrk", "-t1", "-c16", f"-d{secs}s", "--timeout", "10s", "-s", script, url],
                                         stdout=subprocess.PIPE, text=True))
        start, peak = time.time(), (0, 0)
        early, late = [], []  # live heap samples at 60-90 s and in the last 45 s
        while any(p.poll() is None for p in load):
            time.sleep(5)
            el = time.time() - start
            if el >= secs - 5:
                break
            own, total, _ = self.rss()
            peak = (max(peak[0], own), max(peak[1], total))
            if 60 <= el < 95 and len(early) < 3 and el >= 60 + 15 * len(early):
                early.append(self.live_heap())
            elif el >= secs - 50 and len(late) < 3 and el >= secs - 50 + 15 * len(late):
                late.append(self.live_heap())
        for p in load:
            out = p.communicate()[0]
            if "Non-2xx" in out or "Socket errors" in out:
                raise SystemExit(f"bench-side-by-side: the mixed load answered errors:\n{out}")
        at1, end = statistics.median(early), statistics.median(late)
        print(f"live heap, median of 3 samples after a forced GC: {at1 / 2**20:.1f} MiB at 1-1.5 min, "
              f"{end / 2**20:.1f} MiB in the last minute of {self.minutes} ({(end / at1 - 1) * 100:+.1f}%); "
              f"samples {[round(x / 2**20, 1) for x in early]} and {[round(x / 2**20, 1) for x in late]}")
        print(f"under load (peak of 5 s samples): plugboard {peak[0] / 1024:.1f} MiB, "
              f"with its plugin processes {peak[1] / 1024:.1f} MiB")


def lua_string(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def lua_unstring(s):
    return s[1:-1].replace("\\'", "'").replace("\\\\", "\\")


class IdP(http.server.BaseHTTPRequestHandler):
    """A local OAuth 2.0 token endpoint (client credentials) and a Graph
    API stand-in for the msgraph plugin's test."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer({"access_token": "bench-access-token-%d" % time.time_ns(), "token_type": "Bearer",
                     "expires_in": 86400})

    def do_GET(self):
        self.answer({"id": "00000000-0000-0000-0000-000000000002", "displayName": "Bench", "value": []})

    def answer(self, doc):
        raw = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    duration = int(os.environ.get("DURATION", "8"))
    pg_url = os.environ.get("POSTGRES_URL", "")
    profile_dir = os.environ.get("PROFILE_DIR", "")
    if profile_dir:
        os.makedirs(profile_dir, exist_ok=True)
    for tool in ["wrk", "go", "openssl"] + (["psql"] if pg_url else []):
        if not shutil.which(tool):
            raise SystemExit(f"bench-side-by-side: needs {tool}")
    work = tempfile.mkdtemp(prefix="pbbench")
    idp = http.server.ThreadingHTTPServer(("127.0.0.1", 0), IdP)
    threading.Thread(target=idp.serve_forever, daemon=True).start()
    b = Bench(work, rounds, duration, pg_url)
    b.idp_url = f"http://127.0.0.1:{idp.server_address[1]}"
    try:
        b.build()
        b.start_servers()
        b.seed(int(os.environ.get("SAVE_CUSTOMERS", "500")), int(os.environ.get("PAGE_CUSTOMERS", "10000")))
        if os.environ.get("MEMORY_MINUTES"):
            Memory(b, int(os.environ["MEMORY_MINUTES"])).run()
        else:
            b.table(b.measure(profile_dir))
    finally:
        b.stop()
        if os.environ.get("KEEP_WORK"):
            log("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
