// view.js - shows /mjpeg?session=ID in an <img> and reconnects when the
// stream ends (the session closed, the server restarted): the viewer keeps
// showing the last frame meanwhile, then picks the session up again.
const query = new URLSearchParams(location.search);
const session = query.get('session');
// A server with a viewer token wants it on the stream's URL too.
const token = query.get('token');
const img = document.getElementById('frame');
const message = document.getElementById('message');
const RETRY_MS = 2000;

function show(text) {
  message.textContent = text;
  message.hidden = !text;
}

function connect() {
  // A fresh query string defeats any cached, finished stream.
  const auth = token ? `&token=${encodeURIComponent(token)}` : '';
  img.src = `/mjpeg?session=${encodeURIComponent(session)}${auth}&t=${Date.now()}`;
}

if (!session) {
  show('Add ?session=ID to the address (the demo page shows the id).');
} else {
  img.addEventListener('load', () => show(''));
  img.addEventListener('error', () => {
    show(`Session ${session} is not streaming; retrying…`);
    setTimeout(connect, RETRY_MS);
  });
  connect();
}
