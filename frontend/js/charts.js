// Canvas pictures: the training loss curve, audio waveforms and the pitch-range histogram.
// Hand-written on purpose: the UI ships without a build step or CDN, and each picture is a few
// dozen lines of 2D-canvas code.

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/** Size the canvas backing store to its CSS box × devicePixelRatio; returns [ctx, w, h]. */
function setup(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const rect = canvas.getBoundingClientRect();
  const w = Math.max(1, Math.round(rect.width || canvas.clientWidth || 600));
  const hgt = Math.max(1, Math.round(rect.height || canvas.clientHeight || 200));
  if (canvas.width !== w * dpr || canvas.height !== hgt * dpr) {
    canvas.width = w * dpr;
    canvas.height = hgt * dpr;
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  ctx.font = '11px system-ui, sans-serif';
  return [ctx, w, hgt];
}

/** ~n "nice" tick values covering [lo, hi]. */
export function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

const fmtTick = (v) => (Math.abs(v) >= 1000 ? `${+(v / 1000).toFixed(1)}k` : `${+v.toPrecision(3)}`);

// --- loss curve -------------------------------------------------------------------------------

export const LOSS_SERIES = [
  { key: 'total', label: 'total loss', color: '--chart-1' },
  { key: 'mel', label: 'mel loss', color: '--chart-2' },
  { key: 'val_mel', label: 'validation mel loss', color: '--chart-3', dashed: true },
];

/**
 * Draw the training curve.
 * @param {HTMLCanvasElement} canvas
 * @param {{step:number, mel:number, total:number, val_mel:number|null}[]} curve
 * @param {Set<string>} [shown] the series keys to draw (all by default): the total loss is
 *   several times the mel losses, so on one axis it flattens them
 */
export function drawLossCurve(canvas, curve, shown) {
  const [ctx, w, hgt] = setup(canvas);
  const pad = { l: 48, r: 12, t: 12, b: 28 };
  const pts = (curve || []).filter((p) => Number.isFinite(p.step));
  const series = LOSS_SERIES.filter((s) => (!shown || shown.has(s.key)) && pts.some((p) => Number.isFinite(p[s.key])));
  canvas.dataset.series = series.map((s) => s.key).join(',');
  ctx.fillStyle = css('--muted');
  if (!pts.length || !series.length) {
    ctx.fillText('Waiting for the first training steps…', pad.l, hgt / 2);
    return;
  }
  const xs = pts.map((p) => p.step);
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (x1 === x0) x1 = x0 + 1;
  const ys = series.flatMap((s) => pts.map((p) => p[s.key]).filter(Number.isFinite));
  // GAN losses spike now and then: scale to the 98th percentile so one spike does not
  // flatten the curve; spikes are drawn clipped at the top edge.
  const sorted = [...ys].sort((a, b) => a - b);
  let y0 = sorted[0];
  let y1 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.98))];
  const span = y1 - y0 || Math.abs(y1) || 1;
  y0 -= span * 0.05;
  y1 += span * 0.05;
  const X = (v) => pad.l + ((v - x0) / (x1 - x0)) * (w - pad.l - pad.r);
  const Y = (v) => pad.t + (1 - (Math.min(v, y1) - y0) / (y1 - y0)) * (hgt - pad.t - pad.b);

  ctx.strokeStyle = css('--chart-grid');
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const t of niceTicks(y0, y1, 5)) {
    ctx.beginPath();
    ctx.moveTo(pad.l, Y(t));
    ctx.lineTo(w - pad.r, Y(t));
    ctx.stroke();
    ctx.fillText(fmtTick(t), pad.l - 6, Y(t));
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const t of niceTicks(x0, x1, Math.max(2, Math.floor((w - pad.l) / 90)))) {
    if (!Number.isInteger(t)) continue;
    ctx.fillText(fmtTick(t), X(t), hgt - pad.b + 6);
  }
  ctx.textAlign = 'left';
  ctx.fillText('step', w - pad.r - 24, hgt - 14);

  for (const s of series) {
    ctx.strokeStyle = css(s.color);
    ctx.lineWidth = 2;
    ctx.setLineDash(s.dashed ? [6, 4] : []);
    ctx.beginPath();
    let started = false;
    for (const p of pts) {
      const v = p[s.key];
      if (!Number.isFinite(v)) continue;
      if (started) ctx.lineTo(X(p.step), Y(v));
      else ctx.moveTo(X(p.step), Y(v));
      started = true;
    }
    ctx.stroke();
    // single points (e.g. sparse validation) stay visible
    ctx.fillStyle = css(s.color);
    for (const p of pts) if (Number.isFinite(p[s.key]) && s.dashed) ctx.fillRect(X(p.step) - 2, Y(p[s.key]) - 2, 4, 4);
  }
  ctx.setLineDash([]);
}

// --- waveform ---------------------------------------------------------------------------------

/** Per-column [min, max] of the first channels' mean, for `columns` columns. */
export function peaks(buffer, columns) {
  const chans = [];
  for (let c = 0; c < Math.min(buffer.numberOfChannels, 2); c++) chans.push(buffer.getChannelData(c));
  const n = chans[0].length;
  const out = new Float32Array(columns * 2);
  const per = n / columns;
  for (let i = 0; i < columns; i++) {
    const a = Math.floor(i * per);
    const b = Math.max(a + 1, Math.floor((i + 1) * per));
    let lo = 1;
    let hi = -1;
    const stride = Math.max(1, Math.floor((b - a) / 2000)); // bounded work per column
    for (let j = a; j < b && j < n; j += stride) {
      let v = 0;
      for (const ch of chans) v += ch[j];
      v /= chans.length;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    out[2 * i] = lo > hi ? 0 : lo;
    out[2 * i + 1] = lo > hi ? 0 : hi;
  }
  return out;
}

// a quiet recording is drawn scaled up to fill the height (at most this much, so that near
// silence stays flat), and says so: a -30 dBFS vocal once looked like an empty file
const MAX_WAVE_GAIN = 40;

function drawPeaks(canvas, pk, position) {
  const [ctx, w, hgt] = setup(canvas);
  const cols = pk.length / 2;
  const mid = hgt / 2;
  const played = position == null ? -1 : position * w;
  let peak = 0;
  for (const v of pk) peak = Math.max(peak, Math.abs(v));
  const gain = peak > 0 ? Math.min(MAX_WAVE_GAIN, Math.max(1, 1 / peak)) : 1;
  canvas.dataset.gain = gain.toFixed(2);
  for (let i = 0; i < cols; i++) {
    const x = (i / cols) * w;
    ctx.fillStyle = x <= played ? css('--accent') : css('--wave');
    ctx.globalAlpha = x <= played ? 1 : 0.75;
    const top = mid - Math.min(1, pk[2 * i + 1] * gain) * mid * 0.95;
    const bot = mid - Math.max(-1, pk[2 * i] * gain) * mid * 0.95;
    ctx.fillRect(x, top, Math.max(1, w / cols), Math.max(1, bot - top));
  }
  ctx.globalAlpha = 1;
  if (gain >= 2) {
    ctx.fillStyle = css('--muted');
    ctx.textAlign = 'right';
    ctx.textBaseline = 'top';
    ctx.fillText(`quiet: drawn ×${Math.round(gain)}`, w - 4, 3);
    ctx.textAlign = 'left';
  }
  if (position != null) {
    ctx.fillStyle = css('--text');
    ctx.fillRect(Math.min(w - 1, played), 0, 1, hgt);
  }
}

let decoder = null;
/** Decode an audio URL to an AudioBuffer (Web Audio decodeAudioData). */
export async function decodeUrl(url) {
  const res = await fetch(url, { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`the audio could not be loaded (HTTP ${res.status})`);
  const data = await res.arrayBuffer();
  // one OfflineAudioContext is enough for decoding; it never plays, so no user gesture needed
  decoder = decoder || new OfflineAudioContext(1, 1, 44100);
  return await decoder.decodeAudioData(data);
}

/**
 * A waveform picture for an audio file, kept in step with an <audio> element: the played part
 * is highlighted and a click seeks.
 * @returns {HTMLCanvasElement} (fills in asynchronously; data-state = loading|ready|error)
 */
export function waveform(url, audio, label) {
  const canvas = document.createElement('canvas');
  canvas.className = 'wave';
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `Waveform of ${label}`);
  canvas.dataset.state = 'loading';
  let pk = null;
  const redraw = () => {
    if (!pk) return;
    const d = audio && audio.duration;
    drawPeaks(canvas, pk, d && Number.isFinite(d) && audio.currentTime > 0 ? audio.currentTime / d : null);
  };
  decodeUrl(url)
    .then((buf) => {
      const cols = Math.max(64, Math.round((canvas.clientWidth || 600) / 2));
      pk = peaks(buf, cols);
      canvas.dataset.state = 'ready';
      canvas.dataset.duration = buf.duration.toFixed(3);
      canvas.setAttribute('aria-label', `Waveform of ${label}, ${buf.duration.toFixed(1)} seconds`);
      redraw();
    })
    .catch((e) => {
      canvas.dataset.state = 'error';
      canvas.setAttribute('aria-label', `No waveform for ${label}: ${e.message}`);
      const [ctx, , hgt] = setup(canvas);
      ctx.fillStyle = css('--muted');
      ctx.fillText(`No waveform: ${e.message}`, 8, hgt / 2);
    });
  if (audio) {
    audio.addEventListener('timeupdate', redraw);
    audio.addEventListener('seeked', redraw);
    canvas.addEventListener('click', (e) => {
      const d = audio.duration;
      if (!d || !Number.isFinite(d)) return;
      const r = canvas.getBoundingClientRect();
      audio.currentTime = ((e.clientX - r.left) / r.width) * d;
    });
  }
  new ResizeObserver(redraw).observe(canvas);
  return canvas;
}

// --- pitch histogram --------------------------------------------------------------------------

const NOTE_NAMES = ['C', 'C♯', 'D', 'D♯', 'E', 'F', 'F♯', 'G', 'G♯', 'A', 'A♯', 'B'];
export const hzToMidi = (hz) => 69 + 12 * Math.log2(hz / 440);
export const midiName = (m) => `${NOTE_NAMES[((Math.round(m) % 12) + 12) % 12]}${Math.floor(Math.round(m) / 12) - 1}`;

/**
 * The voice's pitch coverage: seconds sung per note and its range (low–high: the central 90 %
 * of the sung time); optionally a second range to compare (a source song's).
 * @param {HTMLCanvasElement} canvas
 * @param {{histogram?: {midi:number, note:string, seconds:number}[], range?: object}} report
 * @param {{low_hz:number, high_hz:number, label:string}} [compare]
 */
export function drawPitchHistogram(canvas, report, compare) {
  const [ctx, w, hgt] = setup(canvas);
  const pad = { l: 40, r: 10, t: 16, b: 30 };
  const hist = (report.histogram || []).filter((b) => Number.isFinite(b.midi));
  const range = report.range || {};
  const mids = hist.map((b) => b.midi);
  for (const hz of [range.low_hz, range.high_hz, compare?.low_hz, compare?.high_hz]) if (hz > 0) mids.push(hzToMidi(hz));
  ctx.fillStyle = css('--muted');
  if (!mids.length) {
    ctx.fillText('No pitch data.', pad.l, hgt / 2);
    return;
  }
  const m0 = Math.floor(Math.min(...mids)) - 2;
  const m1 = Math.ceil(Math.max(...mids)) + 2;
  const maxS = Math.max(1e-6, ...hist.map((b) => b.seconds || 0));
  const cw = (w - pad.l - pad.r) / (m1 - m0 + 1);
  const X = (m) => pad.l + (m - m0) * cw;
  const Y = (s) => pad.t + (1 - s / maxS) * (hgt - pad.t - pad.b);

  // the range: the central 90 % of the sung time (low_hz-high_hz, CoverageReportPublic)
  if (range.low_hz > 0 && range.high_hz > 0) {
    ctx.fillStyle = css('--accent-soft');
    const a = X(hzToMidi(range.low_hz));
    ctx.fillRect(a, pad.t, X(hzToMidi(range.high_hz)) + cw - a, hgt - pad.t - pad.b);
  }
  ctx.strokeStyle = css('--chart-grid');
  ctx.fillStyle = css('--muted');
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const t of niceTicks(0, maxS, 4)) {
    ctx.beginPath();
    ctx.moveTo(pad.l, Y(t));
    ctx.lineTo(w - pad.r, Y(t));
    ctx.stroke();
    ctx.fillText(`${fmtTick(t)} s`, pad.l - 4, Y(t));
  }
  const lowM = range.low_hz > 0 ? hzToMidi(range.low_hz) : null;
  const highM = range.high_hz > 0 ? hzToMidi(range.high_hz) : null;
  for (const b of hist) {
    const inRange = lowM == null || (b.midi >= Math.round(lowM) && b.midi <= Math.round(highM));
    ctx.fillStyle = css(inRange ? '--chart-1' : '--muted');
    const y = Y(b.seconds || 0);
    ctx.fillRect(X(b.midi) + 1, y, Math.max(1, cw - 2), hgt - pad.b - y);
  }
  // note labels: every C, plus the range ends
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  ctx.fillStyle = css('--muted');
  const marked = new Set([lowM, highM].filter((m) => m != null).map(Math.round));
  for (let m = m0; m <= m1; m++) if (m % 12 === 0 && !marked.has(m)) ctx.fillText(midiName(m), X(m) + cw / 2, hgt - pad.b + 4);
  const marker = (m, text, color, row) => {
    ctx.strokeStyle = css(color);
    ctx.fillStyle = css(color);
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(X(m) + cw / 2, pad.t - 2);
    ctx.lineTo(X(m) + cw / 2, hgt - pad.b);
    ctx.stroke();
    ctx.fillText(text, X(m) + cw / 2, hgt - pad.b + 4 + row * 12);
  };
  if (lowM != null) marker(lowM, range.low || midiName(lowM), '--chart-3', 1);
  if (highM != null) marker(highM, range.high || midiName(highM), '--chart-3', 1);
  if (compare?.low_hz > 0 && compare?.high_hz > 0) {
    ctx.setLineDash([4, 3]);
    marker(hzToMidi(compare.low_hz), '', '--chart-2', 0);
    marker(hzToMidi(compare.high_hz), '', '--chart-2', 0);
    ctx.setLineDash([]);
  }
}
