/* The book's live detector: an exported d2lssd model run in the browser with onnxruntime-web.
 *
 * Mounted on every element of class "d2lssd-live-detector" (written by
 * d2lssd.live.live_detector). Works from file:// and offline: the runtime's
 * WebAssembly binary and loader come from classic scripts (book/_ext/d2lssd_ort.py),
 * the model and the images from the page itself; one thread, no worker, no fetch.
 *
 * Each element gets, for tests and curious readers, `el.d2lssdResult`:
 * {image, score_threshold, iou_threshold, detections: [[class, score, x1, y1, x2, y2] in input pixels],
 *  ms, runs} and `el.dataset.state` = "loading" | "ready" | "error".
 */
(function () {
  'use strict';

  function bytesOfBase64(text) {
    const bin = atob(text.trim());
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function gunzip(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  let runtimeReady = null;
  function runtime() {
    if (!runtimeReady) {
      runtimeReady = (async function () {
        if (!window.ort || !window.D2LSSD_ORT_WASM_GZ || !window.D2LSSD_ORT_GLUE) {
          throw new Error('the onnxruntime-web files of _static/ort did not load');
        }
        ort.env.wasm.numThreads = 1;   // threads need workers and cross-origin isolation: not from file://
        ort.env.wasm.proxy = false;    // no worker either
        ort.env.wasm.wasmBinary = await gunzip(bytesOfBase64(window.D2LSSD_ORT_WASM_GZ));
        const glue = new Blob([window.D2LSSD_ORT_GLUE], {type: 'text/javascript'});
        ort.env.wasm.wasmPaths = {mjs: URL.createObjectURL(glue)};  // a blob: import works from file://
        return window.ort;
      })();
    }
    return runtimeReady;
  }

  function loadImage(src) {
    return new Promise(function (resolve, reject) {
      const img = new Image();
      img.onload = function () { resolve(img); };
      img.onerror = function () { reject(new Error('the image could not be decoded')); };
      img.src = src;
    });
  }

  async function pixelsOf(img, w, h) {
    // the exact decoded RGB values (no colour management), resized to the model's input
    let source = img;
    try {
      source = await createImageBitmap(img, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
    } catch (e) { /* older browsers: draw the image itself */ }
    const c = document.createElement('canvas');
    c.width = w; c.height = h;
    const g = c.getContext('2d', {willReadFrequently: true});
    g.drawImage(source, 0, 0, w, h);
    const rgba = g.getImageData(0, 0, w, h).data;
    const chw = new Uint8Array(3 * w * h);
    for (let i = 0, n = w * h; i < n; i++) {
      chw[i] = rgba[4 * i];
      chw[n + i] = rgba[4 * i + 1];
      chw[2 * n + i] = rgba[4 * i + 2];
    }
    return {chw: chw, bitmap: source};
  }

  const COLORS = ['#e41a1c', '#377eb8', '#4daf4a', '#984ea3', '#ff7f00', '#a65628'];

  async function mount(root) {
    if (root.dataset.state) return;
    root.dataset.state = 'loading';
    const $ = function (sel) { return root.querySelector(sel); };
    const data = JSON.parse($('script.d2lssd-live-data').textContent);
    const status = $('.d2lssd-live-status');
    const canvas = $('canvas');
    const list = $('.d2lssd-live-list');
    const sliders = {score: $('input[data-threshold=score]'), iou: $('input[data-threshold=iou]')};
    const H = data.input_size[0], W = data.input_size[1];
    $('.d2lssd-live-ui').hidden = false;
    $('.d2lssd-live-fallback').hidden = true;
    status.textContent = 'loading onnxruntime-web and the model...';
    const t0 = performance.now();
    await runtime();
    const model = await gunzip(bytesOfBase64($('script.d2lssd-live-model').textContent));
    const session = await ort.InferenceSession.create(model, {executionProviders: ['wasm']});
    const loadMs = performance.now() - t0;
    let current = null, running = false, pending = false, runs = 0;

    function thresholds() {
      return {score: parseFloat(sliders.score.value), iou: parseFloat(sliders.iou.value)};
    }

    function draw(result) {
      const g = canvas.getContext('2d');
      const sx = canvas.width / W, sy = canvas.height / H;
      g.drawImage(current.bitmap, 0, 0, canvas.width, canvas.height);
      g.lineWidth = 2;
      g.font = '13px sans-serif';
      result.detections.forEach(function (d) {
        const color = COLORS[d[0] % COLORS.length];
        const x = d[2] * sx, y = d[3] * sy, w = (d[4] - d[2]) * sx, h = (d[5] - d[3]) * sy;
        g.strokeStyle = color;
        g.strokeRect(x, y, w, h);
        const label = data.class_names[d[0]] + ' ' + d[1].toFixed(2);
        g.fillStyle = color;
        g.fillRect(x, Math.max(0, y - 16), g.measureText(label).width + 6, 16);
        g.fillStyle = '#fff';
        g.fillText(label, x + 3, Math.max(12, y - 4));
      });
      list.textContent = result.detections.length + ' detection' + (result.detections.length === 1 ? '' : 's') +
        ' on ' + result.image + (result.detections.length ? ': ' : '') +
        result.detections.slice(0, 8).map(function (d) {
          return data.class_names[d[0]] + ' ' + d[1].toFixed(3) + ' at (' +
            d.slice(2).map(function (v) { return v.toFixed(1); }).join(', ') + ')';
        }).join('; ') + (result.detections.length > 8 ? '; ...' : '');
    }

    async function detect() {
      if (!current) return;
      if (running) { pending = true; return; }
      running = true;
      try {
        do {
          pending = false;
          const t = thresholds();
          const start = performance.now();
          const out = await session.run({
            images: new ort.Tensor('uint8', current.chw, [1, 3, H, W]),
            score_threshold: new ort.Tensor('float32', [t.score], []),
            iou_threshold: new ort.Tensor('float32', [t.iou], [])});
          const ms = performance.now() - start;
          const n = Number(out.num_detections.data[0]);
          const dets = [];
          for (let k = 0; k < n; k++) {
            const b = out.boxes.data;
            dets.push([Number(out.classes.data[k]), out.scores.data[k],
                       b[4 * k] * W, b[4 * k + 1] * H, b[4 * k + 2] * W, b[4 * k + 3] * H]);
          }
          runs += 1;
          const result = {image: current.name, score_threshold: t.score, iou_threshold: t.iou,
                          detections: dets, ms: ms, runs: runs};
          root.d2lssdResult = result;
          draw(result);
          status.textContent = 'onnxruntime-web ' + ort.env.versions.web + ', WebAssembly, 1 thread: ' +
            'model loaded in ' + loadMs.toFixed(0) + ' ms, this image in ' + ms.toFixed(0) + ' ms';
          root.dataset.runs = String(runs);
        } while (pending);
      } finally {
        running = false;
      }
    }

    async function select(src, name) {
      const img = await loadImage(src);
      const px = await pixelsOf(img, W, H);
      current = {chw: px.chw, bitmap: px.bitmap, name: name};
      await detect();
    }

    Object.keys(sliders).forEach(function (k) {
      const s = sliders[k];
      const show = function () { s.parentElement.querySelector('output').textContent = parseFloat(s.value).toFixed(2); };
      s.addEventListener('input', function () { show(); detect(); });
      show();
    });
    root.querySelectorAll('.d2lssd-live-thumbs img').forEach(function (img, i) {
      img.addEventListener('click', function () { select(img.src, 'validation image ' + i); });
    });
    function pickFile(file) {
      if (!file) return;
      const reader = new FileReader();
      reader.onload = function () {
        select(reader.result, file.name).catch(function (e) { status.textContent = 'error: ' + e.message; });
      };
      reader.readAsDataURL(file);
    }
    $('input[type=file]').addEventListener('change', function (e) { pickFile(e.target.files[0]); });
    const drop = $('.d2lssd-live-drop');
    drop.addEventListener('dragover', function (e) { e.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', function () { drop.classList.remove('over'); });
    drop.addEventListener('drop', function (e) {
      e.preventDefault();
      drop.classList.remove('over');
      pickFile(e.dataTransfer.files[0]);
    });
    await select(data.images[0], 'validation image 0');
    root.dataset.state = 'ready';
  }

  function mountAll() {
    document.querySelectorAll('.d2lssd-live-detector').forEach(function (root) {
      mount(root).catch(function (e) {
        root.dataset.state = 'error';
        const s = root.querySelector('.d2lssd-live-status');
        if (s) s.textContent = 'the live detector could not start: ' + e.message;
        console.error(e);
      });
    });
  }

  window.d2lssdLive = {mount: mount, runtime: runtime};
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', mountAll);
  else mountAll();
})();
