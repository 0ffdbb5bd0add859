// Builds the phi3serve Grafana dashboard with Grafana's foundation SDK and
// prints its JSON:  node deploy/grafana/dashboard.mjs > deploy/grafana/phi3serve.json
// (ctest deploy_grafana_dashboard_check fails when the committed JSON differs,
// and the fleet test runs every query below against a real Prometheus.)
// Quantiles and per-tenant rates come from deploy/prometheus/recording.yml.
import {
  DashboardBuilder,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
} from "@grafana/grafana-foundation-sdk/dashboard";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as StatPanel } from "@grafana/grafana-foundation-sdk/stat";
import { PanelBuilder as TimeseriesPanel } from "@grafana/grafana-foundation-sdk/timeseries";

const datasource = { type: "prometheus", uid: "${datasource}" };
const query = (expr, legend) =>
  new DataqueryBuilder().datasource(datasource).expr(expr).legendFormat(legend);

// A time series panel: [expr, legend] pairs, a unit, a width (of 24).
function series(title, unit, targets, width = 8, description = "") {
  const panel = new TimeseriesPanel()
    .title(title)
    .description(description)
    .datasource(datasource)
    .unit(unit)
    .min(0)
    .gridPos({ h: 8, w: width, x: 0, y: 0 });
  for (const [expr, legend] of targets) panel.withTarget(query(expr, legend));
  return panel;
}

function stat(title, unit, expr, legend, width = 6) {
  return new StatPanel()
    .title(title)
    .datasource(datasource)
    .unit(unit)
    .gridPos({ h: 4, w: width, x: 0, y: 0 })
    .withTarget(query(expr, legend));
}

const quantiles = (record) => [[`${record}`, "p{{quantile}}"]];
const tenant = '{tenant=~"$tenant"}';

const dashboard = new DashboardBuilder("phi3serve fleet")
  .uid("phi3serve-fleet")
  .tags(["phi3serve"])
  .description("phi3-server replicas behind the HAProxy router: latency, tenants, prefix cache, queue")
  .refresh("30s")
  .time({ from: "now-3h", to: "now" })
  .timezone("browser")
  .withVariable(new DatasourceVariableBuilder("datasource").label("Prometheus").type("prometheus"))
  .withVariable(
    new QueryVariableBuilder("tenant")
      .label("Tenant")
      .datasource(datasource)
      .query("label_values(phi3_completion_tokens_total, tenant)")
      .multi(true)
      .includeAll(true)
      .allValue(".*"),
  )

  .withRow(new RowBuilder("Overview"))
  .withPanel(stat("Replicas up", "none", "phi3:replicas_up:sum", "scraped"))
  .withPanel(stat("Replicas the router uses", "none", 'max(haproxy_backend_active_servers{proxy="phi3"})', "router"))
  .withPanel(stat("Requests waiting", "none", "phi3:engine_waiting_requests:sum", "waiting"))
  .withPanel(stat("Prefix-cache hit ratio", "percentunit", "phi3:prefix_cache_hit_ratio:rate5m", "fleet"))

  .withRow(new RowBuilder("Latency (fleet-wide quantiles, 5 min)"))
  .withPanel(series("Time to first token", "s", quantiles("phi3:request_time_to_first_token_seconds:quantile5m")))
  .withPanel(series("Inter-token time", "s", quantiles("phi3:request_inter_token_seconds:quantile5m")))
  .withPanel(series("End to end", "s", quantiles("phi3:request_duration_seconds:quantile5m")))

  .withRow(new RowBuilder("Tenants"))
  .withPanel(
    series("Tokens per second by tenant", "short", [
      [`tenant:phi3_prompt_tokens:rate5m${tenant}`, "{{tenant}} prompt"],
      [`tenant:phi3_cached_prompt_tokens:rate5m${tenant}`, "{{tenant}} prompt, cached"],
      [`tenant:phi3_completion_tokens:rate5m${tenant}`, "{{tenant}} completion"],
    ]),
  )
  .withPanel(
    series("Dollars per hour by tenant", "currencyUSD", [
      [`tenant:phi3_spend_usd:rate5m${tenant} * 3600`, "{{tenant}}"],
    ]),
  )
  .withPanel(
    series("Dollars in the last 24 h by tenant", "currencyUSD", [
      [`sum by (tenant) (increase(phi3_spend_usd_total${tenant}[24h]))`, "{{tenant}}"],
    ]),
  )

  .withRow(new RowBuilder("Replicas"))
  .withPanel(
    series(
      "Prefix-cache hit ratio",
      "percentunit",
      [
        ["phi3:prefix_cache_hit_ratio:rate5m", "fleet"],
        [
          "sum by (pod) (rate(phi3_prefix_cache_hit_tokens_total[5m])) / sum by (pod) (rate(phi3_prefix_cache_query_tokens_total[5m]))",
          "{{pod}}",
        ],
      ],
      8,
      "Prompt tokens found in the prefix cache / looked up. The router's affinity on x-phi3-route-key keeps it high.",
    ),
  )
  .withPanel(series("KV cache used", "percentunit", [["phi3_kv_cache_usage_ratio", "{{pod}}"]]))
  .withPanel(
    series("Queue", "none", [
      ["sum by (pod) (phi3_engine_waiting_requests)", "{{pod}} waiting"],
      ["sum by (pod) (phi3_engine_running_requests)", "{{pod}} running"],
    ], 8, "Waiting requests per replica drive the autoscaler (HPA on phi3_engine_waiting_requests)."),
  )
  .withPanel(
    series("Router: calls per replica", "reqps", [
      ['sum by (server) (rate(haproxy_server_http_responses_total{proxy="phi3"}[5m]))', "{{server}}"],
    ]),
  )
  .withPanel(
    series("Router: retries and redispatches", "short", [
      ['sum(rate(haproxy_backend_retry_warnings_total{proxy="phi3"}[5m]))', "retries"],
      ['sum(rate(haproxy_backend_redispatch_warnings_total{proxy="phi3"}[5m]))', "redispatches"],
    ]),
  )
  .withPanel(
    series("Replicas up", "none", [
      ["phi3:replicas_up:sum", "scraped"],
      ['max(haproxy_backend_active_servers{proxy="phi3"})', "in the router"],
    ]),
  );

console.log(JSON.stringify(dashboard.build(), null, 2));
