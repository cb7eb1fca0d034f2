// app.js - nextframe's demo page: capture, encode, send, receive, draw.
//
// Frames travel exactly as protocol/wire.h lays them out: one binary
// WebSocket message per frame, a little-endian header (40 bytes FRAME_IN,
// 72 bytes FRAME_OUT) followed by a baseline JPEG. At most MAX_IN_FLIGHT
// frames are unanswered at a time; a reply to seq N returns the credit of
// every seq <= N (the server drops older frames: newest wins).
//
// window.nfStats holds the running statistics for automated tests.

// ---- Protocol constants (protocol/wire.h) --------------------------------

const SUBPROTOCOL = 'nextframe.v1';
const MAGIC = [0x4e, 0x46, 0x52, 0x4d]; // 'N' 'F' 'R' 'M'
const VERSION = 1;
const TYPE_FRAME_IN = 1;
const TYPE_FRAME_OUT = 2;
const FRAME_IN_LEN = 40;
const FRAME_OUT_LEN = 72;
const FORMAT_JPEG = 1;

// Close codes and their meaning (NF_CLOSE_MAP in protocol/wire.h).
const CLOSE_TEXT = {
  1000: 'normal closure',
  1001: 'server going away',
  1003: 'unsupported data',
  1006: 'connection lost',
  1008: 'policy violation',
  1009: 'message too big',
  1011: 'internal server error',
  1013: 'server full, try again later',
  4400: 'malformed message',
  4401: 'unsupported protocol version',
  4402: 'malformed control message',
  4408: 'idle timeout',
  4413: 'frame dimensions exceed the server\'s limits',
  4415: 'unsupported payload format',
  4422: 'corrupt or unsupported JPEG',
};

// ---- Tuning --------------------------------------------------------------

const MAX_IN_FLIGHT = 2;
const MAX_BUFFERED = 1 << 20; // Skip frames while the socket holds 1 MiB.
const WINDOW = 200; // Latency samples kept for the percentiles.
const STATS_MS = 500; // Stats panel refresh.

// ---- State ---------------------------------------------------------------

const $ = (id) => document.getElementById(id);

const stats = {
  state: 'idle',
  framesSent: 0,
  framesReceived: 0,
  dropped: 0, // Frames the server dropped (by the seq rule).
  fpsIn: 0,
  fpsOut: 0,
  latencyP50: 0,
  latencyP95: 0,
  serverMs: { decode: 0, predict: 0, encode: 0, server: 0 },
  closeCode: null,
  closeReason: '',
  welcome: null,
  errors: [],
};
window.nfStats = stats;

let ws = null;
let stream = null; // Camera MediaStream.
let running = false;
let welcomed = false;
let userStopped = false;
let nextSeq = 0; // Seq of the next frame.
let oldestSeq = 0; // Oldest unanswered seq (== nextSeq: none in flight).
let encoding = false; // A toBlob() is in progress.
let lastDrawnSeq = -1;
let frameCallback = 0; // rVFC or rAF handle.
let statsTimer = 0;
const encodeCanvas = document.createElement('canvas');
const encodeCtx = encodeCanvas.getContext('2d');
const outCtx = $('output').getContext('2d');
const latencies = [];
const stageSamples = { decode: [], predict: [], encode: [], server: [] };
const sentTimes = []; // performance.now() of recent sends, for fps in.
const recvTimes = []; // ... and of recent replies, for fps out.

// ---- Helpers -------------------------------------------------------------

function showError(message) {
  stats.errors.push(message);
  const li = document.createElement('li');
  li.textContent = message;
  $('errors').append(li);
}

function clearErrors() {
  $('errors').replaceChildren();
}

function pushWindow(list, value, max = WINDOW) {
  list.push(value);
  if (list.length > max) list.shift();
}

function percentile(values, p) {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

// Events per second over the last second of timestamps.
function rate(times, now) {
  while (times.length && now - times[0] > 1000) times.shift();
  return times.length;
}

function inFlight() {
  return nextSeq - oldestSeq + (encoding ? 1 : 0);
}

function defaultUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const host = location.host || '127.0.0.1:8080';
  return `${scheme}//${host}/v1/stream`;
}

// ---- Wire format ---------------------------------------------------------

// Builds one FRAME_IN message: 40-byte header + the JPEG bytes.
function buildFrameIn(seq, captureUs, width, height, jpeg) {
  const msg = new Uint8Array(FRAME_IN_LEN + jpeg.byteLength);
  const v = new DataView(msg.buffer);
  msg.set(MAGIC, 0);
  v.setUint8(4, VERSION);
  v.setUint8(5, TYPE_FRAME_IN);
  v.setUint16(6, FRAME_IN_LEN, true);
  v.setUint32(8, 0, true); // flags
  v.setUint32(12, seq, true);
  v.setBigUint64(16, BigInt(captureUs), true);
  v.setUint16(24, width, true);
  v.setUint16(26, height, true);
  v.setUint8(28, FORMAT_JPEG); // 29..31 reserved, 0
  v.setUint32(32, jpeg.byteLength, true); // 36..39 reserved, 0
  msg.set(new Uint8Array(jpeg), FRAME_IN_LEN);
  return msg;
}

// Parses a FRAME_OUT message; returns null when it is malformed.
function parseFrameOut(buf) {
  if (buf.byteLength < FRAME_OUT_LEN) return null;
  const v = new DataView(buf);
  for (let i = 0; i < 4; i++) if (v.getUint8(i) !== MAGIC[i]) return null;
  if (v.getUint8(4) !== VERSION || v.getUint8(5) !== TYPE_FRAME_OUT) return null;
  if (v.getUint16(6, true) !== FRAME_OUT_LEN) return null;
  const payloadLen = v.getUint32(32, true);
  if (FRAME_OUT_LEN + payloadLen !== buf.byteLength) return null;
  return {
    seq: v.getUint32(12, true),
    captureUs: Number(v.getBigUint64(16, true)),
    width: v.getUint16(24, true),
    height: v.getUint16(26, true),
    payloadLen,
    decodeUs: v.getUint32(48, true),
    predictUs: v.getUint32(52, true),
    encodeUs: v.getUint32(56, true),
    serverUs: v.getUint32(60, true),
    serverDropped: v.getUint32(64, true),
  };
}

// ---- Capture and send ----------------------------------------------------

function scheduleFrame() {
  const video = $('video');
  if (!running) return;
  if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
    frameCallback = video.requestVideoFrameCallback(onVideoFrame);
  } else {
    frameCallback = requestAnimationFrame(onVideoFrame);
  }
}

function cancelFrame() {
  const video = $('video');
  if (!frameCallback) return;
  if ('cancelVideoFrameCallback' in HTMLVideoElement.prototype) {
    video.cancelVideoFrameCallback(frameCallback);
  } else {
    cancelAnimationFrame(frameCallback);
  }
  frameCallback = 0;
}

// Called once per new video frame: capture it if there is credit.
function onVideoFrame() {
  frameCallback = 0;
  scheduleFrame();
  const video = $('video');
  if (!welcomed || !ws || ws.readyState !== WebSocket.OPEN) return;
  if (video.videoWidth === 0 || inFlight() >= MAX_IN_FLIGHT) return;
  if (ws.bufferedAmount > MAX_BUFFERED) return;

  const captureUs = Math.round(performance.now() * 1000);
  const maxW = Number($('width').value);
  const scale = Math.min(1, maxW / video.videoWidth);
  // Even sizes keep 4:2:0 chroma planes whole.
  const w = Math.max(2, Math.round((video.videoWidth * scale) / 2) * 2);
  const h = Math.max(2, Math.round((video.videoHeight * scale) / 2) * 2);
  if (encodeCanvas.width !== w || encodeCanvas.height !== h) {
    encodeCanvas.width = w;
    encodeCanvas.height = h;
    $('input-size').textContent = `${w}×${h}`;
  }
  encodeCtx.drawImage(video, 0, 0, w, h);
  encoding = true;
  encodeCanvas.toBlob(
    (blob) => {
      encoding = false;
      if (blob) sendFrame(blob, captureUs, w, h);
    },
    'image/jpeg',
    Number($('quality').value),
  );
}

async function sendFrame(blob, captureUs, w, h) {
  encoding = true; // Still ours until it is on the socket.
  let jpeg;
  try {
    jpeg = await blob.arrayBuffer();
  } finally {
    encoding = false;
  }
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  ws.send(buildFrameIn(nextSeq, captureUs, w, h, jpeg));
  nextSeq++;
  stats.framesSent++;
  pushWindow(sentTimes, performance.now(), 1000);
}

// ---- Receive and draw ----------------------------------------------------

function onFrameOut(buf) {
  const f = parseFrameOut(buf);
  if (!f) {
    showError('Malformed frame from the server.');
    stop(4400, 'malformed reply');
    return;
  }
  if (f.seq < oldestSeq || f.seq >= nextSeq) {
    showError(`Reply with unexpected seq ${f.seq}.`);
    return;
  }
  const now = performance.now();
  stats.dropped += f.seq - oldestSeq; // The seq rule: older ones dropped.
  oldestSeq = f.seq + 1;
  stats.framesReceived++;
  pushWindow(recvTimes, now, 1000);
  pushWindow(latencies, now - f.captureUs / 1000);
  pushWindow(stageSamples.decode, f.decodeUs / 1000);
  pushWindow(stageSamples.predict, f.predictUs / 1000);
  pushWindow(stageSamples.encode, f.encodeUs / 1000);
  pushWindow(stageSamples.server, f.serverUs / 1000);
  drawReply(buf, f);
}

async function drawReply(buf, f) {
  const jpeg = new Blob([new Uint8Array(buf, FRAME_OUT_LEN, f.payloadLen)], {
    type: 'image/jpeg',
  });
  let bitmap;
  try {
    bitmap = await createImageBitmap(jpeg);
  } catch (e) {
    showError(`Cannot decode frame ${f.seq}: ${e.message}`);
    return;
  }
  // Decodes can finish out of order: never draw an older frame.
  if (f.seq > lastDrawnSeq) {
    lastDrawnSeq = f.seq;
    const canvas = $('output');
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
      $('output-size').textContent = `${bitmap.width}×${bitmap.height}`;
    }
    outCtx.drawImage(bitmap, 0, 0);
  }
  bitmap.close();
}

function onControl(text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch (e) {
    showError('Malformed control message from the server.');
    return;
  }
  if (msg.type === 'welcome') {
    stats.welcome = msg;
    welcomed = true;
    setState('streaming');
    $('st-backend').textContent = `${msg.backend} (${msg.session})`;
    const sid = encodeURIComponent(msg.session);
    $('viewer-link').href = `/view?session=${sid}`;
    $('mjpeg-link').href = `/mjpeg?session=${sid}`;
    fillStyles(msg.styles || [], msg.style);
  } else if (msg.type === 'state') {
    if (msg.style) $('style').value = msg.style;
  } else if (msg.type === 'error') {
    showError(`Server: ${msg.message || msg.code}`);
  }
}

function fillStyles(styles, current) {
  const select = $('style');
  const wanted = new URLSearchParams(location.search).get('style');
  select.replaceChildren();
  for (const name of styles) {
    const opt = document.createElement('option');
    opt.value = name;
    opt.textContent = name;
    select.append(opt);
  }
  select.value = current || '';
  select.disabled = styles.length < 2;
  if (wanted && styles.includes(wanted) && wanted !== current) {
    select.value = wanted;
    sendControl({ type: 'set', style: wanted });
  }
}

function sendControl(obj) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
}

// ---- Connection ----------------------------------------------------------

function connect(url) {
  nextSeq = 0;
  oldestSeq = 0;
  lastDrawnSeq = -1;
  welcomed = false;
  userStopped = false;
  setState('connecting');
  try {
    ws = new WebSocket(url, SUBPROTOCOL);
  } catch (e) {
    showError(`Bad server URL ${url}: ${e.message}`);
    stop();
    return;
  }
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => sendControl({ type: 'hello', version: VERSION });
  ws.onmessage = (ev) => {
    if (typeof ev.data === 'string') onControl(ev.data);
    else onFrameOut(ev.data);
  };
  ws.onerror = () => {
    if (!welcomed && !userStopped) {
      showError(`Cannot connect to ${url}.`);
      userStopped = true; // onclose follows; say it once.
      stop();
    }
  };
  ws.onclose = (ev) => {
    stats.closeCode = ev.code;
    stats.closeReason = ev.reason;
    ws = null;
    if (!userStopped) {
      const what = ev.reason || CLOSE_TEXT[ev.code] || '';
      showError(
        ev.code === 1006
          ? 'Connection lost.'
          : `Server closed the connection: ${ev.code} ${what}`,
      );
      stop();
    }
    setState('closed');
  };
}

// ---- Sources -------------------------------------------------------------

async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error(
      'No camera API here: open the page as http://localhost or over https.',
    );
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
  } catch (e) {
    if (e.name === 'NotAllowedError') throw new Error('Camera permission denied.');
    if (e.name === 'NotFoundError') throw new Error('No camera found.');
    if (e.name === 'NotReadableError') throw new Error('The camera is in use by another program.');
    throw new Error(`Cannot open the camera: ${e.message}`);
  }
  const video = $('video');
  video.srcObject = stream;
  video.loop = false;
  await video.play();
}

async function openFile(file) {
  const video = $('video');
  video.srcObject = null;
  video.src = URL.createObjectURL(file);
  video.loop = true;
  try {
    await video.play();
  } catch (e) {
    throw new Error(`Cannot play ${file.name}: ${e.message}`);
  }
}

function closeSource() {
  const video = $('video');
  if (stream) {
    for (const t of stream.getTracks()) t.stop();
    stream = null;
  }
  video.pause();
  if (video.src) {
    URL.revokeObjectURL(video.src);
    video.removeAttribute('src');
  }
  video.srcObject = null;
}

// ---- Start / stop --------------------------------------------------------

async function start() {
  clearErrors();
  stats.errors = [];
  $('start').disabled = true;
  try {
    if ($('source').value === 'file') {
      const file = $('file').files[0];
      if (!file) throw new Error('Choose a video file first.');
      await openFile(file);
    } else {
      await openCamera();
    }
  } catch (e) {
    showError(e.message);
    $('start').disabled = false;
    closeSource();
    setState('idle');
    return;
  }
  running = true;
  $('start').textContent = 'Stop';
  $('start').disabled = false;
  connect($('url').value.trim());
  scheduleFrame();
  statsTimer = setInterval(updateStats, STATS_MS);
}

function stop(code = 1000, reason = 'stopped') {
  running = false;
  cancelFrame();
  if (ws) {
    userStopped = true;
    ws.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason);
  }
  closeSource();
  clearInterval(statsTimer);
  updateStats();
  $('start').textContent = 'Start';
  $('start').disabled = false;
}

function setState(s) {
  stats.state = s;
  $('st-state').textContent = s;
}

// ---- Stats panel ---------------------------------------------------------

function updateStats() {
  const now = performance.now();
  stats.fpsIn = rate(sentTimes, now);
  stats.fpsOut = rate(recvTimes, now);
  stats.latencyP50 = percentile(latencies, 50);
  stats.latencyP95 = percentile(latencies, 95);
  for (const k of Object.keys(stageSamples)) {
    stats.serverMs[k] = percentile(stageSamples[k], 50);
  }
  const ms = (x) => `${x.toFixed(1)} ms`;
  $('st-fps-in').textContent = String(stats.fpsIn);
  $('st-fps-out').textContent = String(stats.fpsOut);
  $('st-p50').textContent = latencies.length ? ms(stats.latencyP50) : '–';
  $('st-p95').textContent = latencies.length ? ms(stats.latencyP95) : '–';
  $('st-sent').textContent = String(stats.framesSent);
  $('st-received').textContent = String(stats.framesReceived);
  $('st-dropped').textContent = String(stats.dropped);
  $('st-server').textContent = latencies.length ? ms(stats.serverMs.server) : '–';
  $('st-stages').textContent = latencies.length
    ? `${ms(stats.serverMs.decode)} / ${ms(stats.serverMs.predict)} / ${ms(stats.serverMs.encode)}`
    : '–';
}

// ---- Wiring --------------------------------------------------------------

function init() {
  const q = new URLSearchParams(location.search);
  $('url').value = q.get('url') || defaultUrl();
  if (q.get('quality')) $('quality').value = q.get('quality');
  if (q.get('width')) {
    const opt = document.createElement('option');
    opt.value = opt.textContent = q.get('width');
    $('width').append(opt);
    $('width').value = q.get('width');
  }
  $('quality-value').textContent = Number($('quality').value).toFixed(2);
  $('quality').addEventListener('input', () => {
    $('quality-value').textContent = Number($('quality').value).toFixed(2);
  });
  $('source').addEventListener('change', () => {
    if ($('source').value === 'file') $('file').click();
  });
  $('style').addEventListener('change', () => {
    sendControl({ type: 'set', style: $('style').value });
  });
  $('start').addEventListener('click', () => (running ? stop() : start()));
  window.addEventListener('pagehide', () => stop(1001, 'page closed'));
  if (q.get('autostart') === '1') start();
}

init();
