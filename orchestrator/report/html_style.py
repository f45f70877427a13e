"""The HTML report's one stylesheet, inline in every page (the page loads nothing)."""

CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#d9e2ec;--bg:#f5f7fa;--card:#fff;--ok:#2f855a;--ok-bg:#e3f4ea;
--bad:#c53030;--bad-bg:#fde8e8;--warn:#b7791f;--warn-bg:#fdf3dc;--unk:#52606d;--unk-bg:#e4e7eb;--info:#2b6cb0;
--info-bg:#e3eefa;--bar-ok:#3c9d6d;--bar-open:#4c7bd9;--drill:#6b46c1;--drill-bg:#efe9fb}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0 auto;padding:28px 32px 40px;color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif;max-width:1280px}
code,.mono,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
h1{font-size:24px;margin:0;line-height:1.25;overflow-wrap:anywhere}
h2{font-size:16px;margin:0 0 12px;letter-spacing:.01em}
section,header.summary{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 22px;
margin:0 0 18px;box-shadow:0 1px 2px rgba(31,41,51,.05)}
.title-row{display:flex;align-items:center;gap:10px;flex-wrap:wrap}
.badge{display:inline-block;font-weight:700;font-size:11.5px;letter-spacing:.08em;padding:3px 9px;border-radius:999px;
border:1px solid transparent;white-space:nowrap}
.badge.mode-drill{background:var(--drill-bg);color:var(--drill);border-color:#d6c8f5}
.badge.mode-failover{background:var(--bad-bg);color:var(--bad);border-color:#f5c2c2}
.pill{display:inline-block;font-weight:600;font-size:12px;padding:2px 9px;border-radius:999px;white-space:nowrap}
.s-succeeded,.o-ok,.v-pass{background:var(--ok-bg);color:var(--ok)}
.s-failed,.o-bad,.v-fail{background:var(--bad-bg);color:var(--bad)}
.s-partially-failed,.s-interrupted{background:var(--warn-bg);color:var(--warn)}
.s-running{background:var(--info-bg);color:var(--info)}
.s-skipped,.s-pending,.o-neutral,.v-unknown,.s-unknown{background:var(--unk-bg);color:var(--unk)}
.sub{color:var(--muted);margin:6px 0 14px}
dl.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:10px 22px;margin:0}
dl.facts div{min-width:0}
dt{color:var(--muted);font-size:11.5px;text-transform:uppercase;letter-spacing:.06em}
dd{margin:2px 0 0;font-weight:600;overflow-wrap:anywhere}
.params{margin-top:14px;display:flex;flex-wrap:wrap;gap:6px;align-items:center}
.params .k{color:var(--muted);font-size:12px;margin-right:4px}
.param{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:1px 7px;word-break:break-all}
.objectives{display:grid;grid-template-columns:1fr 1fr;gap:18px;background:none;border:0;padding:0;box-shadow:none}
.objective{background:var(--card);border:1px solid var(--line);border-left:5px solid var(--unk);border-radius:10px;
padding:16px 20px}
.objective.verdict-pass{border-left-color:var(--ok)}
.objective.verdict-fail{border-left-color:var(--bad)}
.objective header{display:flex;justify-content:space-between;align-items:center;gap:10px}
.objective h2{margin:0}
.objective h2 small{color:var(--muted);font-weight:400;font-size:12.5px;margin-left:6px}
.verdict{font-weight:800;font-size:13px;letter-spacing:.06em;padding:3px 11px;border-radius:6px}
.figures{display:flex;gap:34px;margin:12px 0 8px}
.figures .label{display:block;color:var(--muted);font-size:11.5px;text-transform:uppercase;letter-spacing:.06em}
.figures .value{font-size:22px;font-weight:700;font-variant-numeric:tabular-nums}
.gauge{position:relative;height:8px;background:var(--unk-bg);border-radius:4px;margin:6px 0 10px}
.gauge .fill{position:absolute;left:0;top:0;bottom:0;border-radius:4px;background:var(--ok)}
.verdict-fail .gauge .fill{background:var(--bad)}
.verdict-unknown .gauge .fill{background:var(--unk)}
.gauge .target{position:absolute;top:-4px;bottom:-4px;width:2px;background:var(--ink)}
.detail{margin:0;color:var(--muted);font-size:13px;overflow-wrap:anywhere}
.scroll{overflow-x:auto}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;color:var(--muted);font-size:12.5px;margin:10px 0 0}
.legend span{display:inline-flex;align-items:center;gap:6px}
.sw{display:inline-block;width:22px;height:11px;border-radius:2px}
.sw.ok{background:var(--bar-ok)}
.sw.failed{background:repeating-linear-gradient(45deg,#e05252 0 3px,#fbd5d5 3px 6px);border:1px solid var(--bad)}
.sw.open{background:var(--bar-open)}
.sw.skip{border:1.5px dashed #9aa5b1;border-radius:6px}
.sw.obj{width:0;height:14px;border-left:2px dashed var(--ink);border-radius:0}
.sw.meas{width:0;height:14px;border-left:2px solid var(--ok);border-radius:0}
.sw.meas.fail{border-left-color:var(--bad)}
.sw.meas.unknown{border-left-color:var(--unk)}
.caveat{color:var(--warn);font-size:12.5px;margin:8px 0 0}
svg.timeline{display:block;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;font-size:12px}
svg .band-0{fill:#f8fafc}
svg .band-1{fill:#eef2f7}
svg .tier-label{font-weight:700;font-size:12.5px;fill:var(--ink)}
svg .tier-count{font-weight:400;fill:var(--muted)}
svg .step-label{fill:var(--ink);font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;
font-size:11.5px}
svg .step-icon{font-weight:700;font-size:12px;text-anchor:middle;fill:var(--unk)}
svg .step-icon.status-succeeded{fill:var(--ok)}
svg .step-icon.status-failed{fill:var(--bad)}
svg .grid{stroke:#d5dde6;stroke-width:1}
svg .axis-line{stroke:#9aa5b1}
svg .tick{fill:var(--muted);font-size:11px;text-anchor:middle;font-variant-numeric:tabular-nums}
svg .axis-title{fill:var(--muted);font-size:11px;text-anchor:end}
svg .bar{stroke-width:1;shape-rendering:crispEdges}
svg .bar.ok{fill:var(--bar-ok);stroke:#2c7a54}
svg .bar.failed{fill:url(#hatch);stroke:var(--bad)}
svg .bar.open{fill:var(--bar-open);stroke:#2f5fb3;fill-opacity:.75}
svg .bar.other{fill:#d69e2e;stroke:#b7791f}
svg .hatch-bg{fill:#fbd5d5}
svg .hatch-fg{fill:#e05252}
svg .fail-dot{fill:#fff;stroke:var(--bad);stroke-width:1.2;pointer-events:none}
svg .fail-mark{fill:var(--bad);font-weight:800;font-size:12px;text-anchor:middle;pointer-events:none}
svg .row-bg{fill:transparent}
svg .row:hover .row-bg{fill:rgba(43,108,176,.08)}
svg .row:hover .step-label{font-weight:700}
svg .retry-mark{fill:#9c4221;font-size:11px;font-weight:600}
svg .span-line{stroke:#9aa5b1;stroke-width:1;stroke-dasharray:2 2}
svg .skip-mark rect,svg .idle-mark rect{fill:#fff;stroke:#9aa5b1;stroke-width:1.2;stroke-dasharray:4 3}
svg .skip-mark text,svg .idle-mark text{fill:var(--unk);font-size:10.5px;text-anchor:middle;font-style:italic}
svg .marker line{stroke-width:2}
svg .marker text{font-size:11px;font-weight:700}
svg .rto-objective line{stroke:var(--ink);stroke-dasharray:6 4}
svg .rto-objective text{fill:var(--ink)}
svg .rto-measured line{stroke:var(--unk)}
svg .rto-measured text{fill:var(--unk)}
svg .rto-measured.verdict-pass line{stroke:var(--ok)}
svg .rto-measured.verdict-pass text{fill:var(--ok)}
svg .rto-measured.verdict-fail line{stroke:var(--bad)}
svg .rto-measured.verdict-fail text{fill:var(--bad)}
table{border-collapse:collapse;width:100%;font-size:13px}
table.steps{table-layout:fixed;min-width:980px}
th{text-align:left;color:var(--muted);font-weight:600;font-size:11.5px;text-transform:uppercase;letter-spacing:.05em;
border-bottom:2px solid var(--line);padding:6px 10px;white-space:nowrap}
td{border-bottom:1px solid var(--line);padding:7px 10px;vertical-align:top;overflow-wrap:anywhere}
tbody tr:nth-child(even){background:#fafbfc}
tr.tier-row td{background:var(--bg);font-weight:700;font-size:12px;color:var(--muted);letter-spacing:.04em;
padding:5px 10px}
td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.err{color:var(--bad)}
.why{color:var(--muted);font-style:italic}
.att{display:block;color:var(--muted);font-size:12px}
details summary{cursor:pointer}
details pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--bg);border:1px solid var(--line);
border-radius:6px;padding:8px;margin:6px 0 0;max-height:260px;overflow:auto}
.empty{color:var(--muted);font-style:italic;margin:0}
.method,.phase-note{margin-top:8px}
.counts{color:var(--muted);margin:0 0 10px}
ul.notes{margin:0;padding-left:20px}
ul.notes li{margin:3px 0;overflow-wrap:anywhere}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:8px}
@media (max-width:900px){.objectives{grid-template-columns:1fr}body{padding:16px}}
@media print{html{background:#fff}section,header.summary,.objective{box-shadow:none;break-inside:avoid-page}
.scroll{overflow:visible}}
"""
