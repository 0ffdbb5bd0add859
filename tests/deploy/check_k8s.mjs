// Renders every overlay in deploy/k8s/overlays with `kubectl kustomize` and
// checks, offline:
//  - every object against its Kubernetes schema (kubernetes-models; the
//    Prometheus operator's ServiceMonitor and PrometheusRule from
//    @kubernetes-models/prometheus-operator): types, required fields, enums,
//    patterns (the schemas do not reject unknown fields);
//  - what the deployment promises: hardened pods, native gRPC probes,
//    preStop + drain timeout below the grace period, a read-only model
//    volume with its SHA-256 passed to the server, resources on every
//    container, the objects each overlay must have, the HPA's metric served
//    by the shipped prometheus-adapter rule, the PrometheusRule equal to
//    deploy/prometheus's rule files.
//   node tests/deploy/check_k8s.mjs KUBECTL
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { parse, parseAllDocuments } from "yaml";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const kubectl = process.argv[2] || "kubectl";
const failures = [];
const fail = (where, message) => failures.push(`${where}: ${message}`);

// apiVersion + kind -> the model class that validates it.
async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const path =
    group === "monitoring.coreos.com"
      ? `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`
      : `kubernetes-models/${group ? `${group}/` : ""}${version}/${kind}`;
  try {
    return (await import(path))[kind];
  } catch {
    return null;
  }
}

const seconds = (text) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60 }[m[2]];
};

function checkHardening(where, podSpec) {
  const pod = podSpec.securityContext || {};
  if (pod.runAsNonRoot !== true) fail(where, "pod securityContext.runAsNonRoot is not true");
  if (pod.seccompProfile?.type !== "RuntimeDefault") fail(where, "pod seccompProfile is not RuntimeDefault");
  if (podSpec.automountServiceAccountToken !== false) fail(where, "automountServiceAccountToken is not false");
  for (const c of [...(podSpec.initContainers || []), ...podSpec.containers]) {
    const s = c.securityContext || {};
    const at = `${where} container ${c.name}`;
    if (s.allowPrivilegeEscalation !== false) fail(at, "allowPrivilegeEscalation is not false");
    if (s.readOnlyRootFilesystem !== true) fail(at, "readOnlyRootFilesystem is not true");
    if (!(s.capabilities?.drop || []).includes("ALL")) fail(at, "capabilities do not drop ALL");
    if (s.privileged === true) fail(at, "privileged");
    if (!c.resources?.requests?.memory || !c.resources?.limits?.memory || !c.resources?.requests?.cpu) {
      fail(at, "needs cpu and memory requests and a memory limit");
    }
  }
}

function checkServer(where, deployment, settings) {
  const spec = deployment.spec.template.spec;
  const c = spec.containers.find((x) => x.name === "phi3-server");
  if (!c) return fail(where, "no phi3-server container");
  for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
    if (c[probe]?.grpc?.port !== 50051) fail(where, `${probe} is not a gRPC probe on 50051`);
  }
  if (c.readinessProbe?.grpc?.service !== "phi3.v1.Phi3") fail(where, "readiness does not check phi3.v1.Phi3");
  const pre = c.lifecycle?.preStop?.exec?.command || [];
  const pause = pre[0] === "/bin/sleep" ? Number(pre[1]) : NaN;
  if (!(pause > 0)) fail(where, `preStop is not a /bin/sleep pause: ${JSON.stringify(pre)}`);
  const drain = seconds(settings.DRAIN_TIMEOUT || "");
  if (!(drain > 0)) fail(where, `DRAIN_TIMEOUT ${settings.DRAIN_TIMEOUT} is not a duration`);
  if (!(spec.terminationGracePeriodSeconds > pause + drain)) {
    fail(where, `terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds} <= preStop ${pause} s + drain ${drain} s`);
  }
  if (!c.args.includes("--model-sha256=$(MODEL_SHA256)")) fail(where, "the server is not given --model-sha256");
  const models = (c.volumeMounts || []).find((m) => m.name === "models");
  if (!models?.readOnly || !c.args.includes("--model=$(MODEL_PATH)") || !settings.MODEL_PATH?.startsWith(`${models.mountPath}/`)) {
    fail(where, "the model is not read from the read-only models volume");
  }
  const volume = spec.volumes.find((v) => v.name === "models");
  if (volume?.persistentVolumeClaim && volume.persistentVolumeClaim.readOnly !== true) {
    fail(where, "the model PersistentVolumeClaim is not mounted readOnly");
  }
  if (Number(settings.THREADS) !== Number(c.resources.requests.cpu)) {
    fail(where, `THREADS ${settings.THREADS} differs from the CPU request ${c.resources.requests.cpu}`);
  }
}

const rulesOf = (file) => parse(readFileSync(join(root, "deploy/prometheus", file), "utf8")).groups;
const adapterRules = parse(readFileSync(join(root, "deploy/k8s/prometheus-adapter-rules.yaml"), "utf8")).rules;

const overlaysDir = join(root, "deploy/k8s/overlays");
const expected = {
  dev: { replicas: 1, tls: false, kinds: [] },
  prod: {
    replicas: 3,
    tls: true,
    kinds: ["PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"],
  },
};
const overlays = readdirSync(overlaysDir).sort();
if (!isDeepStrictEqual(overlays, Object.keys(expected).sort())) fail("overlays", `found ${overlays}`);

for (const overlay of overlays) {
  const rendered = execFileSync(kubectl, ["kustomize", join(overlaysDir, overlay)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const objects = parseAllDocuments(rendered).map((d) => d.toJS()).filter(Boolean);
  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  const named = (kind, name) => byKind(kind).find((o) => o.metadata.name === name);
  const namespace = byKind("Namespace")[0]?.metadata.name;
  if (!namespace) fail(overlay, "no Namespace object");

  for (const object of objects) {
    const where = `${overlay} ${object.kind}/${object.metadata?.name}`;
    const Model = await modelFor(object.apiVersion, object.kind);
    if (!Model) {
      fail(where, `no schema for ${object.apiVersion} ${object.kind}`);
      continue;
    }
    try {
      new Model(object).validate();
    } catch (e) {
      fail(where, e.message);
    }
    if (object.kind !== "Namespace" && object.metadata.namespace !== namespace) {
      fail(where, `namespace ${object.metadata.namespace}, expected ${namespace}`);
    }
  }

  const settings = named("ConfigMap", "phi3serve")?.data || {};
  const server = named("Deployment", "phi3serve");
  const router = named("Deployment", "phi3serve-router");
  if (!server || !router) {
    fail(overlay, "needs Deployments phi3serve and phi3serve-router");
    continue;
  }
  for (const d of [server, router]) checkHardening(`${overlay} Deployment/${d.metadata.name}`, d.spec.template.spec);
  checkServer(`${overlay} Deployment/phi3serve`, server, settings);
  const want = expected[overlay];
  if (server.spec.replicas !== want.replicas) fail(overlay, `${server.spec.replicas} replicas, expected ${want.replicas}`);
  if ((overlay === "prod") === !/^[0-9a-f]{64}$|^REPLACE/.test(settings.MODEL_SHA256 || "")) {
    fail(overlay, `MODEL_SHA256 "${settings.MODEL_SHA256}": prod must set one, dev serves a generated model`);
  }
  const headless = named("Service", "phi3serve-replicas");
  if (headless?.spec.clusterIP !== "None") fail(overlay, "Service phi3serve-replicas is not headless");
  const routerEnv = router.spec.template.spec.containers[0].env || [];
  if (routerEnv.some((e) => e.name === "PHI3_ROUTER_TLS_CERT") !== want.tls) {
    fail(overlay, `router TLS ${want.tls ? "missing" : "unexpected"}`);
  }
  for (const kind of want.kinds) if (byKind(kind).length === 0) fail(overlay, `no ${kind}`);

  for (const hpa of byKind("HorizontalPodAutoscaler")) {
    if (hpa.spec.scaleTargetRef.name !== "phi3serve") fail(overlay, "the HPA does not scale phi3serve");
    for (const m of hpa.spec.metrics) {
      const name = m.pods?.metric?.name;
      if (m.type !== "Pods" || !adapterRules.some((r) => r.name.as === name)) {
        fail(overlay, `HPA metric ${name} (${m.type}) is not served by deploy/k8s/prometheus-adapter-rules.yaml`);
      }
    }
  }
  for (const rule of byKind("PrometheusRule")) {
    const shipped = [...rulesOf("recording.yml"), ...rulesOf("alerts.yml")];
    if (!isDeepStrictEqual(rule.spec.groups, shipped)) {
      fail(overlay, "PrometheusRule differs from deploy/prometheus/recording.yml + alerts.yml");
    }
  }
  console.log(`${overlay}: ${objects.length} objects (${[...new Set(objects.map((o) => o.kind))].join(", ")})`);
}

if (failures.length) {
  for (const f of failures) console.error(`FAIL ${f}`);
  process.exit(1);
}
console.log("all overlays render and validate");
