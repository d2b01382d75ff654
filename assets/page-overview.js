// The overview: totals by state and usage, what expires soon, expiries per week for 26 weeks
// (an SVG drawn here), the CRL, OCSP answers by status and the renewal sweep (from /metrics).
import { get, qs } from './api.js';
import { h, svg, clear, num, fmt_time, fill } from './ui.js';

const weeks = 26;

const card = (label, value, id) => h('div', { class: 'card', id }, h('div', { class: 'n' }, value), h('div', { class: 'l' }, label));

// Active certificates expiring within `days` (the list's total; one row fetched).
const expiring_within = (days) => get(`/api/client-certs${qs({ status: 'expiring', expiring_within_days: days, limit: 1 })}`).then((r) => r.total);

// Prometheus text: the value of `name{labels}` lines, by the value of `label`.
function metric(text, name, label) {
  const out = {};
  const re = new RegExp(`^${name}(?:\\{([^}]*)\\})? ([0-9.eE+-]+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const lm = label && m[1] ? new RegExp(`${label}="([^"]*)"`).exec(m[1]) : null;
    out[lm ? lm[1] : ''] = Number(m[2]);
  }
  return out;
}

function chart(counts) {
  const w = 780, hgt = 220, left = 40, bottom = 30, top = 10;
  const max = Math.max(1, ...counts);
  const bw = (w - left - 10) / counts.length;
  const y = (v) => top + (hgt - top - bottom) * (1 - v / max);
  const g = svg('svg', { class: 'chart', viewBox: `0 0 ${w} ${hgt}`, role: 'img', id: 'expiry-chart',
    'aria-label': `Certificates expiring per week for the next ${weeks} weeks; most in one week: ${max}` });
  g.append(svg('title', {}, 'Expiries per week'));
  for (const v of [0, Math.ceil(max / 2), max]) {
    g.append(svg('line', { x1: left, x2: w - 10, y1: y(v), y2: y(v) }));
    g.append(svg('text', { x: left - 6, y: y(v) + 3, 'text-anchor': 'end' }, String(v)));
  }
  counts.forEach((v, i) => {
    const r = svg('rect', { class: 'wk', x: left + i * bw + 2, y: y(v), width: Math.max(1, bw - 4), height: Math.max(0, hgt - bottom - y(v)) });
    r.append(svg('title', {}, `week ${i + 1}: ${v}`));
    g.append(r);
    if (i % 4 === 0) g.append(svg('text', { x: left + i * bw + bw / 2, y: hgt - bottom + 14, 'text-anchor': 'middle' }, `w${i + 1}`));
  });
  g.append(svg('text', { x: w - 10, y: hgt - 4, 'text-anchor': 'end' }, 'weeks from today'));
  return g;
}

export async function render(main) {
  document.title = 'Overview · CertMate';
  const [st, e7, e30, e90, crl, metrics_text, last] = await Promise.all([
    get('/api/client-certs/stats'),
    expiring_within(7), expiring_within(30), expiring_within(90),
    get('/api/crl/info').catch(() => null),
    get('/metrics').catch(() => ''),
    get('/api/renewals/last').catch(() => null),
  ]);
  const per_week = st.expiring_per_week.slice(0, weeks);
  const ocsp = metric(metrics_text, 'certmate_ocsp_responses_total', 'status');
  const renewals = metric(metrics_text, 'certmate_renewals_total', 'result');
  const next_run = metric(metrics_text, 'certmate_renewal_next_run_timestamp_seconds')[''];

  fill(main, 
    h('h1', {}, 'Overview'),
    h('section', { 'aria-labelledby': 'h-state' }, h('h2', { id: 'h-state' }, 'Certificates by state'),
      h('div', { class: 'grid' }, card('total', num(st.total), 'ov-total'), card('active', num(st.by_state.active), 'ov-active'),
        card('on hold', num(st.by_state.on_hold), 'ov-on-hold'), card('revoked', num(st.by_state.revoked), 'ov-revoked'),
        card('expired', num(st.by_state.expired), 'ov-expired'))),
    h('section', { 'aria-labelledby': 'h-usage' }, h('h2', { id: 'h-usage' }, 'By usage'),
      h('div', { class: 'grid' }, Object.entries(st.by_usage).map(([k, v]) => card(k, num(v))))),
    h('section', { 'aria-labelledby': 'h-exp' }, h('h2', { id: 'h-exp' }, 'Expiring (active certificates)'),
      h('div', { class: 'grid' }, card('in 7 days', num(e7), 'ov-exp7'), card('in 30 days', num(e30), 'ov-exp30'), card('in 90 days', num(e90), 'ov-exp90')),
      h('div', { class: 'panel' }, h('h3', {}, `Expiries per week, next ${weeks} weeks`), chart(per_week))),
    h('div', { class: 'form-grid' },
      h('section', { class: 'panel', 'aria-labelledby': 'h-crl' }, h('h2', { id: 'h-crl' }, 'CRL'),
        crl ? h('dl', { class: 'kv' }, h('dt', {}, 'CRL number'), h('dd', { id: 'crl-number' }, String(crl.crl_number)),
          h('dt', {}, 'Revoked entries'), h('dd', { id: 'crl-revoked' }, num(crl.revoked_count)),
          h('dt', {}, 'This update'), h('dd', {}, fmt_time(crl.this_update)),
          h('dt', {}, 'Next update'), h('dd', {}, fmt_time(crl.next_update)))
          : h('p', { class: 'muted' }, 'No CRL has been published yet.')),
      h('section', { class: 'panel', 'aria-labelledby': 'h-ocsp' }, h('h2', { id: 'h-ocsp' }, 'OCSP answers'),
        metrics_text ? h('dl', { class: 'kv', id: 'ocsp-counts' }, Object.entries(ocsp).map(([k, v]) => [h('dt', {}, k), h('dd', {}, num(v))]))
          : h('p', { class: 'muted' }, 'Metrics are not available to this session.')),
      h('section', { class: 'panel', 'aria-labelledby': 'h-ren' }, h('h2', { id: 'h-ren' }, 'Renewal sweep'),
        h('dl', { class: 'kv' },
          h('dt', {}, 'Last sweep'), h('dd', { id: 'last-sweep' }, last
            ? `${fmt_time(last.started_at)}: ${num(last.renewed)} renewed, ${num(last.failed)} failed of ${num(last.candidates)} due`
            : 'none yet'),
          h('dt', {}, 'Next sweep'), h('dd', { id: 'next-sweep' }, next_run ? fmt_time(new Date(next_run * 1000).toISOString()) : '—'),
          h('dt', {}, 'Renewed since start'), h('dd', {}, num(renewals.ok)),
          h('dt', {}, 'Failed since start'), h('dd', {}, num(renewals.failed))))));
}
