// The live training curves: Python sends the epochs this browser does not have yet ("start" is
// the number it already has), and they are appended here, so each second only the new epochs
// travel; a full page run sends them all again from 0.
const TRAIN = "#8fb1dc", VALID = "#1f4e9c", W = 1000, H = 340;

function fmt(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.001 || a >= 100000)) return v.toExponential(1);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
}

function panel(x0, width, title, rows, ti, vi, span, best) {
  const top = 40, bottom = H - 45, left = x0 + 60, right = x0 + width - 10;
  const vals = rows.flatMap(r => [r[ti], r[vi]]).filter(v => v !== null && Number.isFinite(v));
  let out = `<text x="${(left + right) / 2}" y="18" text-anchor="middle" class="t">${title}</text>`;
  out += `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" class="ax"/>`;
  out += `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" class="ax"/>`;
  const xs = e => left + (span > 1 ? (e - 1) / (span - 1) : 0.5) * (right - left);
  const step = Math.max(1, Math.ceil(span / 8));
  for (let e = 1; e <= span; e += step) out += `<text x="${xs(e)}" y="${bottom + 16}" text-anchor="middle" class="k">${e}</text>`;
  out += `<text x="${(left + right) / 2}" y="${bottom + 36}" text-anchor="middle" class="k">Epoch</text>`;
  if (!vals.length) return out;
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (hi - lo < 1e-12) { lo -= 0.5 * (Math.abs(lo) || 1); hi += 0.5 * (Math.abs(hi) || 1); }
  const pad = (hi - lo) * 0.06; lo -= pad; hi += pad;
  const ys = v => bottom - (v - lo) / (hi - lo) * (bottom - top);
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4;
    out += `<line x1="${left}" y1="${ys(v)}" x2="${right}" y2="${ys(v)}" class="g"/>`;
    out += `<text x="${left - 6}" y="${ys(v) + 4}" text-anchor="end" class="k">${fmt(v)}</text>`;
  }
  for (const [i, color, w] of [[ti, TRAIN, 2], [vi, VALID, 3]]) {
    const pts = rows.filter(r => r[i] !== null && Number.isFinite(r[i]));
    if (!pts.length) continue;
    out += `<polyline fill="none" stroke="${color}" stroke-width="${w}" points="${pts.map(r => `${xs(r[0])},${ys(r[i])}`).join(" ")}"/>`;
    if (pts.length <= 30) out += pts.map(r => `<circle cx="${xs(r[0])}" cy="${ys(r[i])}" r="3" fill="${color}"/>`).join("");
  }
  if (best && best[vi] !== null) {
    out += `<text x="${xs(best[0])}" y="${ys(best[vi]) + 6}" text-anchor="middle" class="s">★</text>`;
  }
  return out;
}

function draw(root, rows, data) {
  const span = Math.max(data.epochs_total || 0, rows.length ? rows[rows.length - 1][0] : 0, 1);
  let best = null;
  for (const r of rows) if (r[2] !== null && Number.isFinite(r[2]) && (!best || r[2] < best[2])) best = r;
  const metric = `${data.metric} (${data.higher ? "higher" : "lower"} is better)`;
  let svg = `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="Training curves">`;
  svg += panel(0, W / 2, "Loss (lower is better)", rows, 1, 2, span, best);
  svg += panel(W / 2, W / 2, metric, rows, 3, 4, span, best);
  if (!rows.length) svg += `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="w">Waiting for the first epoch…</text>`;
  svg += "</svg>";
  root.querySelector(".plot").innerHTML = svg;
}

export default function (component) {
  const { parentElement, data } = component;
  const root = parentElement.querySelector(".dl-live");
  if (!root || !data) return;
  const state = root.__live || (root.__live = { rows: [] });
  const start = data.start || 0;
  if (start <= state.rows.length) {
    state.rows.length = start;  // a full page run starts again from 0
    state.rows.push(...data.rows);
    delete root.dataset.gap;
  } else {
    root.dataset.gap = String(start - state.rows.length);  // epochs missed: the next page run sends all
  }
  root.dataset.epochs = String(state.rows.length);
  draw(root, state.rows, data);
}
