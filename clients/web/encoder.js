// encoder.js - the demo page's JPEG encoder, run as a dedicated Worker so
// that encoding never blocks the page's main thread (drawing, statistics).
//
// Message in:  { id, bitmap: ImageBitmap (transferred), quality: 0..1 }
// Message out: { id, jpeg: ArrayBuffer (transferred), width, height }
//          or  { id, error: string }
// The bitmap is already at the size to send (createImageBitmap's resize on
// the main thread); it is closed here once drawn.

let canvas = null;
let ctx = null;

self.onmessage = async (ev) => {
  const { id, bitmap, quality } = ev.data;
  try {
    if (!canvas || canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      ctx = canvas.getContext('2d');
    }
    ctx.drawImage(bitmap, 0, 0);
    const { width, height } = bitmap;
    bitmap.close();
    const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality });
    const jpeg = await blob.arrayBuffer();
    self.postMessage({ id, jpeg, width, height }, [jpeg]);
  } catch (e) {
    self.postMessage({ id, error: String((e && e.message) || e) });
  }
};
