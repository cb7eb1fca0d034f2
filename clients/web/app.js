// app.js - nextframe's demo page: capture, encode, send, receive, draw.
//
// Frames travel exactly as protocol/wire.h lays them out: one binary
// WebSocket message per frame, a little-endian header (40 bytes FRAME_IN,
// 72 bytes FRAME_OUT) followed by a baseline JPEG. At most MAX_IN_FLIGHT
// frames are unanswered at a time; a reply to seq N returns the credit of
// every seq <= N (the server drops older frames: newest wins).
//
// JPEG encoding runs in a Worker (encoder.js, OffscreenCanvas) where the
// browser has one, else on the main thread (canvas.toBlob). A lost server
// is reconnected with backoff while the camera keeps running.
//
// window.nfStats holds the running statistics for automated tests.

// ---- Protocol constants (protocol/wire.h) --------------------------------

const SUBPROTOCOL = 'nextframe.v1';
// A server started with --token-file wants its token offered as a second
// subprotocol. The page takes it from the address's fragment
// (.../#token=TOKEN), which the browser never sends to any server, so it
// stays out of server and proxy logs.
const TOKEN_PREFIX = 'nextframe.token.';
const streamToken = new URLSearchParams(location.hash.slice(1)).get('token');
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
  4403: 'stream token missing or wrong',
  4408: 'idle timeout',
  4413: 'frame dimensions exceed the server\'s limits',
  4415: 'unsupported payload format',
  4422: 'corrupt or unsupported JPEG',
};

// Close codes after which the page reconnects on its own: the server went
// away, failed, is full, or the connection dropped. Every other code means
// the page or its settings are at fault, and retrying would fail the same.
const RECONNECT_CODES = new Set([1001, 1006, 1011, 1013, 4408]);

// ---- Tuning --------------------------------------------------------------

const MAX_IN_FLIGHT = 2;
const MAX_BUFFERED = 1 << 20; // Skip frames while the socket holds 1 MiB.
const WINDOW = 200; // Latency samples kept for the percentiles.
const WINDOW_MS = 5000; // ... and no older than this.
const STATS_MS = 500; // Stats panel refresh.
const SPARK_POINTS = 120; // Latency sparkline length (frames).
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 10000;

// ---- State ---------------------------------------------------------------

const $ = (id) => document.getElementById(id);

const stats = {
  state: 'idle',
  framesSent: 0,
  framesReceived: 0,
  framesDrawn: 0,
  dropped: 0, // Frames the server dropped (its own count, all reasons).
  fpsIn: 0,
  fpsOut: 0,
  latencyP50: 0, // Glass to glass: capture to drawn, ms.
  latencyP95: 0,
  // Where the time went, p50 ms: encode (client), network (round trip
  // minus the server's time), the server's decode / predict / encode and
  // total, draw (reply received to drawn).
  stages: { encode: 0, network: 0, decode: 0, predict: 0, encodeServer: 0, server: 0, draw: 0 },
  drift: 0,
  correction: true,
  encoder: 'none', // 'worker' or 'main' once chosen.
  reconnects: 0,
  stateMessages: 0, // 'state' replies (to hello, set and reset).
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
let encoding = false; // A frame is being encoded.
let lastDrawnSeq = -1;
let frameCallback = 0; // rVFC or rAF handle.
let statsTimer = 0;
let retryTimer = 0;
let retryMs = RETRY_MIN_MS;
const outCtx = $('output').getContext('2d');
const sparkCtx = $('spark').getContext('2d');
const sent = new Map(); // seq -> { captureMs, sentMs } of unanswered frames.
const samples = {
  latency: [],
  encode: [],
  network: [],
  decode: [],
  predict: [],
  encodeServer: [],
  server: [],
  draw: [],
};
const sparkline = []; // Last SPARK_POINTS glass-to-glass latencies.
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

// A passing state (reconnecting, reconnected) rather than a failure.
function showNotice(text) {
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

// Timestamped samples; the window keeps at most WINDOW of the last WINDOW_MS.
function pushSample(list, value, now) {
  list.push([now, value]);
  while (list.length > WINDOW || (list.length && now - list[0][0] > WINDOW_MS)) list.shift();
}

function percentile(list, p) {
  if (list.length === 0) return 0;
  const s = list.map((x) => x[1]).sort((a, b) => a - b);
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

// What this page needs and every current browser has.
function missingFeatures() {
  const missing = [];
  if (!('WebSocket' in window)) missing.push('WebSockets');
  if (!('createImageBitmap' in window)) missing.push('createImageBitmap');
  if (!HTMLCanvasElement.prototype.toBlob) missing.push('canvas.toBlob');
  if (!DataView.prototype.setBigUint64) missing.push('64-bit DataView');
  return missing;
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
    drift: v.getFloat32(68, true),
  };
}

// ---- JPEG encoder --------------------------------------------------------

// Encodes video frames to JPEG: in a Worker with an OffscreenCanvas where
// the browser has both, else on the main thread with canvas.toBlob. A
// worker that fails once is dropped for the main thread.
const encoder = {
  worker: null,
  pending: new Map(), // id -> resolve
  nextId: 0,
  canvas: null,
  ctx: null,

  init(wantMain) {
    const can =
      !wantMain &&
      'Worker' in window &&
      'OffscreenCanvas' in window &&
      'convertToBlob' in OffscreenCanvas.prototype;
    if (can) {
      try {
        this.worker = new Worker('encoder.js');
        this.worker.onmessage = (ev) => this.onReply(ev.data);
        this.worker.onerror = () => this.fallBack('the encoder worker failed to load');
        stats.encoder = 'worker';
        return;
      } catch (e) {
        this.worker = null;
      }
    }
    stats.encoder = 'main';
  },

  fallBack(why) {
    console.warn(`nextframe: ${why}; encoding on the main thread`);
    if (this.worker) this.worker.terminate();
    this.worker = null;
    stats.encoder = 'main';
    for (const resolve of this.pending.values()) resolve(null);
    this.pending.clear();
  },

  onReply(msg) {
    const resolve = this.pending.get(msg.id);
    this.pending.delete(msg.id);
    if (msg.error) {
      this.fallBack(msg.error);
      if (resolve) resolve(null);
    } else if (resolve) {
      resolve(msg.jpeg);
    }
  },

  // Resolves to an ArrayBuffer of JPEG bytes, or null (frame skipped).
  async encode(video, w, h, quality) {
    if (this.worker) {
      const bitmap = await createImageBitmap(video, {
        resizeWidth: w,
        resizeHeight: h,
        resizeQuality: 'medium',
      });
      if (!this.worker) {
        bitmap.close();
        return null;
      }
      const id = this.nextId++;
      return new Promise((resolve) => {
        this.pending.set(id, resolve);
        this.worker.postMessage({ id, bitmap, quality }, [bitmap]);
      });
    }
    if (!this.canvas) {
      this.canvas = document.createElement('canvas');
      this.ctx = this.canvas.getContext('2d');
    }
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    this.ctx.drawImage(video, 0, 0, w, h);
    const blob = await new Promise((resolve) =>
      this.canvas.toBlob(resolve, 'image/jpeg', quality),
    );
    return blob ? blob.arrayBuffer() : null;
  },
};

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

  const captureMs = performance.now();
  const maxW = Number($('width').value);
  const scale = Math.min(1, maxW / video.videoWidth);
  // Even sizes keep 4:2:0 chroma planes whole.
  const w = Math.max(2, Math.round((video.videoWidth * scale) / 2) * 2);
  const h = Math.max(2, Math.round((video.videoHeight * scale) / 2) * 2);
  $('input-size').textContent = `${w}×${h}`;
  encoding = true;
  const socket = ws;
  encoder
    .encode(video, w, h, Number($('quality').value))
    .then((jpeg) => {
      encoding = false;
      if (jpeg && socket === ws) sendFrame(jpeg, captureMs, w, h);
    })
    .catch((e) => {
      encoding = false;
      showError(`Cannot encode a frame: ${e.message}`);
    });
}

function sendFrame(jpeg, captureMs, w, h) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  const now = performance.now();
  ws.send(buildFrameIn(nextSeq, Math.round(captureMs * 1000), w, h, jpeg));
  sent.set(nextSeq, { captureMs, sentMs: now });
  pushSample(samples.encode, now - captureMs, now);
  nextSeq++;
  stats.framesSent++;
  sentTimes.push(now);
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
  for (let s = oldestSeq; s < f.seq; s++) sent.delete(s); // Dropped (newest wins).
  oldestSeq = f.seq + 1;
  const info = sent.get(f.seq);
  sent.delete(f.seq);
  stats.framesReceived++;
  stats.dropped = f.serverDropped;
  stats.drift = f.drift;
  recvTimes.push(now);
  if (info) pushSample(samples.network, Math.max(0, now - info.sentMs - f.serverUs / 1000), now);
  pushSample(samples.decode, f.decodeUs / 1000, now);
  pushSample(samples.predict, f.predictUs / 1000, now);
  pushSample(samples.encodeServer, f.encodeUs / 1000, now);
  pushSample(samples.server, f.serverUs / 1000, now);
  drawReply(buf, f, now, info ? info.captureMs : f.captureUs / 1000);
}

async function drawReply(buf, f, receivedMs, captureMs) {
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
    const now = performance.now();
    stats.framesDrawn++;
    pushSample(samples.draw, now - receivedMs, now);
    pushSample(samples.latency, now - captureMs, now);
    sparkline.push(now - captureMs);
    if (sparkline.length > SPARK_POINTS) sparkline.shift();
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
    retryMs = RETRY_MIN_MS;
    if (stats.reconnects > 0) showNotice('Reconnected.');
    setState('streaming');
    $('st-backend').textContent = `${msg.backend} (${msg.session})`;
    const sid = encodeURIComponent(msg.session);
    $('viewer-link').href = `/view?session=${sid}`;
    $('mjpeg-link').href = `/mjpeg?session=${sid}`;
    $('reset').disabled = false;
    fillStyles(msg.styles || [], msg.style);
    // A reconnected session starts with the server's defaults.
    if (!$('correction').checked) sendCorrection();
  } else if (msg.type === 'state') {
    stats.stateMessages++;
    if (msg.style) $('style').value = msg.style;
    if (msg.correction && typeof msg.correction.correct === 'number') {
      stats.correction = msg.correction.correct !== 0;
      $('correction').checked = stats.correction;
    }
  } else if (msg.type === 'error') {
    showError(`Server: ${msg.message || msg.code}`);
  }
}

function fillStyles(styles, current) {
  const select = $('style');
  const wanted = new URLSearchParams(location.search).get('style') || select.dataset.chosen;
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

function sendCorrection() {
  sendControl({ type: 'set', correction: { correct: $('correction').checked ? 1 : 0 } });
}

// ---- Connection ----------------------------------------------------------

function connect(url) {
  nextSeq = 0;
  oldestSeq = 0;
  lastDrawnSeq = -1;
  sent.clear();
  welcomed = false;
  userStopped = false;
  setState('connecting');
  try {
    const protocols = [SUBPROTOCOL];
    if (streamToken) protocols.push(TOKEN_PREFIX + streamToken);
    ws = new WebSocket(url, protocols);
  } catch (e) {
    showError(`Bad server URL ${url}: ${e.message}`);
    stop();
    return;
  }
  const socket = ws;
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => sendControl({ type: 'hello', version: VERSION });
  ws.onmessage = (ev) => {
    if (typeof ev.data === 'string') onControl(ev.data);
    else onFrameOut(ev.data);
  };
  ws.onclose = (ev) => {
    if (socket !== ws) return;
    stats.closeCode = ev.code;
    stats.closeReason = ev.reason;
    ws = null;
    $('reset').disabled = true;
    if (userStopped || !running) {
      setState('closed');
      return;
    }
    const what = ev.reason || CLOSE_TEXT[ev.code] || '';
    if (RECONNECT_CODES.has(ev.code)) {
      scheduleReconnect(url, ev.code, what);
      return;
    }
    if (ev.code === 4403) {
      showError('This server needs a stream token: open the page as ' +
                `${location.origin}${location.pathname}#token=TOKEN.`);
    } else {
      showError(`Server closed the connection: ${ev.code} ${what}`);
    }
    stop();
    setState('closed');
  };
}

// The server is gone, full or unreachable: keep the camera, try again with
// a doubling delay (1 s to 10 s) until the user presses Stop.
function scheduleReconnect(url, code, what) {
  const secs = Math.round(retryMs / 1000);
  let why;
  if (code === 1013) why = 'The server is full';
  else if (code === 1001) why = 'The server is going away (restarting?)';
  else if (code === 1006 && !welcomed) why = `Cannot reach ${url}`;
  else if (code === 1006) why = 'Connection to the server lost';
  else why = `The server closed the connection (${code} ${what})`;
  showNotice(`${why}; reconnecting in ${secs} s…`);
  setState('reconnecting');
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => {
    retryTimer = 0;
    if (!running) return;
    stats.reconnects++;
    connect(url);
  }, retryMs);
  retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
}

// ---- Sources -------------------------------------------------------------

async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error(
      'No camera API here: open the page as http://localhost or over https, ' +
        'or choose Source: Video file.',
    );
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
  } catch (e) {
    if (e.name === 'NotAllowedError')
      throw new Error(
        'Camera permission denied: allow the camera in the address bar, or choose Source: Video file.',
      );
    if (e.name === 'NotFoundError')
      throw new Error('No camera found: connect one, or choose Source: Video file.');
    if (e.name === 'NotReadableError')
      throw new Error('The camera is in use by another program.');
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
  showNotice('');
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
  retryMs = RETRY_MIN_MS;
  $('start').textContent = 'Stop';
  $('start').disabled = false;
  connect($('url').value.trim());
  scheduleFrame();
  statsTimer = setInterval(updateStats, STATS_MS);
}

function stop(code = 1000, reason = 'stopped') {
  running = false;
  cancelFrame();
  clearTimeout(retryTimer);
  retryTimer = 0;
  if (ws) {
    userStopped = true;
    ws.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason);
  }
  closeSource();
  clearInterval(statsTimer);
  updateStats();
  showNotice('');
  setState(ws ? 'closing' : 'idle');
  $('reset').disabled = true;
  $('start').textContent = 'Start';
  $('start').disabled = false;
}

function setState(s) {
  stats.state = s;
  $('st-state').textContent = s;
}

// ---- Statistics and heads-up display -------------------------------------

function drawSparkline() {
  const c = $('spark');
  const w = c.width;
  const h = c.height;
  sparkCtx.clearRect(0, 0, w, h);
  if (sparkline.length < 2) return;
  const top = Math.max(50, ...sparkline) * 1.1; // At least a 50 ms scale.
  const y = (ms) => h - 2 - (ms / top) * (h - 4);
  sparkCtx.strokeStyle = 'rgba(255,255,255,0.35)';
  sparkCtx.lineWidth = 1;
  sparkCtx.beginPath();
  sparkCtx.moveTo(0, y(stats.latencyP95));
  sparkCtx.lineTo(w, y(stats.latencyP95));
  sparkCtx.stroke();
  sparkCtx.strokeStyle = '#7fd1ff';
  sparkCtx.lineWidth = 1.5;
  sparkCtx.beginPath();
  sparkline.forEach((ms, i) => {
    const x = (i / (SPARK_POINTS - 1)) * w;
    if (i === 0) sparkCtx.moveTo(x, y(ms));
    else sparkCtx.lineTo(x, y(ms));
  });
  sparkCtx.stroke();
  sparkCtx.fillStyle = 'rgba(255,255,255,0.8)';
  sparkCtx.font = '10px system-ui, sans-serif';
  sparkCtx.fillText(`${Math.round(top)} ms`, 2, 10);
}

function updateStats() {
  const now = performance.now();
  stats.fpsIn = rate(sentTimes, now);
  stats.fpsOut = rate(recvTimes, now);
  stats.latencyP50 = percentile(samples.latency, 50);
  stats.latencyP95 = percentile(samples.latency, 95);
  for (const k of Object.keys(stats.stages)) stats.stages[k] = percentile(samples[k], 50);
  const have = samples.latency.length > 0;
  const ms = (x) => `${x.toFixed(1)} ms`;
  const st = stats.stages;
  const where = have
    ? `encode ${ms(st.encode)} · network ${ms(st.network)} · decode ${ms(st.decode)} · ` +
      `predict ${ms(st.predict)} · encode ${ms(st.encodeServer)} · draw ${ms(st.draw)}`
    : '–';
  $('st-fps-in').textContent = String(stats.fpsIn);
  $('st-fps-out').textContent = String(stats.fpsOut);
  $('st-p50').textContent = have ? ms(stats.latencyP50) : '–';
  $('st-p95').textContent = have ? ms(stats.latencyP95) : '–';
  $('st-sent').textContent = String(stats.framesSent);
  $('st-received').textContent = String(stats.framesReceived);
  $('st-dropped').textContent = String(stats.dropped);
  $('st-drift').textContent = have ? `${stats.drift.toFixed(2)} levels` : '–';
  $('st-stages').textContent = where;
  $('st-encoder').textContent = stats.encoder === 'worker' ? 'worker thread' : 'main thread';
  $('st-reconnects').textContent = String(stats.reconnects);
  $('hud-text').textContent = have
    ? `${stats.fpsIn}→${stats.fpsOut} fps · p50 ${Math.round(stats.latencyP50)} ms · ` +
      `p95 ${Math.round(stats.latencyP95)} ms · drops ${stats.dropped} · ` +
      `drift ${stats.drift.toFixed(1)}`
    : stats.state;
  drawSparkline();
}

// ---- Wiring --------------------------------------------------------------

function init() {
  const q = new URLSearchParams(location.search);
  $('needs-script').remove(); // The module runs: the browser is modern enough.
  const missing = missingFeatures();
  if (missing.length) {
    showError(
      `This browser lacks ${missing.join(', ')}: use a current Chrome, Edge, Firefox or Safari.`,
    );
    $('start').disabled = true;
    return;
  }
  encoder.init(q.get('encoder') === 'main');
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
    $('style').dataset.chosen = $('style').value;
    sendControl({ type: 'set', style: $('style').value });
  });
  $('correction').addEventListener('change', sendCorrection);
  $('reset').addEventListener('click', () => sendControl({ type: 'reset' }));
  $('layout').addEventListener('click', () => {
    const only = $('views').classList.toggle('output-only');
    $('layout').textContent = only ? 'Side by side' : 'Output only';
  });
  $('fullscreen').addEventListener('click', () => {
    const fig = $('output-figure');
    if (document.fullscreenElement) document.exitFullscreen();
    else if (fig.requestFullscreen) fig.requestFullscreen().catch(() => {});
    else showError('This browser cannot show the output full screen.');
  });
  $('start').addEventListener('click', () => (running ? stop() : start()));
  window.addEventListener('pagehide', () => stop(1001, 'page closed'));
  updateStats();
  if (q.get('autostart') === '1') start();
}

init();
