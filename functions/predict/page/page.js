// The try-it page: a photo (file, drop or camera) → POST ./predict (multipart, with the chosen mode) → the photo
// on a canvas with each face's box, age range and gender, and the same as a list. Plain browser JavaScript, no
// build step; served by the predict app (functions/predict/page.ts) under a CSP that allows only this file.

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id))
const fileInput = /** @type {HTMLInputElement} */ ($('file'))
const drop = $('drop')
const modeSelect = /** @type {HTMLSelectElement} */ ($('mode'))
const statusLine = $('status')
const result = $('result')
const canvas = /** @type {HTMLCanvasElement} */ ($('canvas'))
const note = $('note')
const facesList = $('faces')
const modelLine = $('model')
const camera = $('camera')
const video = /** @type {HTMLVideoElement} */ ($('video'))
const cameraStart = /** @type {HTMLButtonElement} */ ($('camera-start'))

/** Colours for face boxes, in turn. */
const COLOURS = ['#ff3b30', '#34c759', '#0a84ff', '#ff9f0a', '#bf5af2', '#64d2ff', '#ffd60a', '#ff2d55']
/** The API takes 5 MiB per request; larger photos are re-encoded smaller in the browser first. */
const MAX_UPLOAD_BYTES = 4.5 * 1024 * 1024
const MAX_SIDE = 2048
/** The drawn photo is scaled to fit this width, and small photos (a face crop) up to at least the minimum. */
const MAX_CANVAS_WIDTH = 960
const MIN_CANVAS_WIDTH = 480

/** @type {{ blob: Blob, name: string } | undefined} */
let lastPhoto
/** @type {MediaStream | undefined} */
let stream
let requestId = 0

function setStatus(text, { error = false } = {}) {
  statusLine.textContent = text
  statusLine.classList.toggle('error', error)
}

/** Sends one photo and draws the answer; a newer photo makes an older answer be ignored. */
async function run(blob, name) {
  lastPhoto = { blob, name }
  const id = ++requestId
  document.body.dataset.state = 'busy'
  setStatus('Estimating…')
  try {
    const upload = blob.size > MAX_UPLOAD_BYTES ? await shrink(blob) : blob
    const form = new FormData()
    form.append('image', upload, name)
    form.append('mode', modeSelect.value)
    let response
    try {
      response = await fetch('predict', { method: 'POST', body: form })
    } catch (err) {
      throw new Error(`cannot reach the API: ${err.message}`)
    }
    const body = await response.json().catch(() => null)
    if (id !== requestId) return
    if (!response.ok || !body) {
      const e = body?.error
      throw new Error(e ? `${e.message}${e.hint ? ` (${e.hint})` : ''}` : `HTTP ${response.status}`)
    }
    const answer = body.images[0]
    if (answer.error) throw new Error(answer.error.message)
    await draw(upload, answer)
    describeModel(body.model)
    document.body.dataset.state = 'done'
  } catch (err) {
    if (id !== requestId) return
    setStatus(err.message, { error: true })
    result.hidden = true
    document.body.dataset.state = 'error'
  }
}

/** Re-encodes a large photo as a JPEG of at most MAX_SIDE pixels (orientation applied by the browser). */
async function shrink(blob) {
  const bitmap = await createImageBitmap(blob)
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height))
  const c = document.createElement('canvas')
  c.width = Math.round(bitmap.width * scale)
  c.height = Math.round(bitmap.height * scale)
  c.getContext('2d').drawImage(bitmap, 0, 0, c.width, c.height)
  bitmap.close()
  return new Promise((resolve, reject) =>
    c.toBlob((b) => (b ? resolve(b) : reject(new Error('cannot re-encode the photo'))), 'image/jpeg', 0.92)
  )
}

function ageText(face) {
  const age = Math.round(face.age)
  if (!face.ageRange) return `${age}`
  return `${Math.round(face.ageRange.low)}–${Math.round(face.ageRange.high)}`
}

/** How sure the model is of the gender it says, in percent. */
function genderConfidence(face) {
  const p = face.gender === 'female' ? face.genderProbability : 1 - face.genderProbability
  return Math.round(p * 100)
}

function genderText(face) {
  return `${face.gender} ${genderConfidence(face)}%`
}

/** Draws the photo, scaled to fit, and each face's box with a label; lists the faces below. */
async function draw(blob, answer) {
  // The API's boxes are in the photo's pixels after EXIF orientation, which is how createImageBitmap draws it.
  const bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' })
  const scale = Math.min(MAX_CANVAS_WIDTH / bitmap.width, Math.max(1, MIN_CANVAS_WIDTH / bitmap.width))
  canvas.width = Math.round(bitmap.width * scale)
  canvas.height = Math.round(bitmap.height * scale)
  const ctx = canvas.getContext('2d')
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height)
  bitmap.close()
  const sx = canvas.width / answer.width
  const sy = canvas.height / answer.height
  const line = Math.max(2, Math.round(canvas.width / 300))
  const fontSize = Math.max(13, Math.round(canvas.width / 45))
  facesList.replaceChildren()
  answer.faces.forEach((face, i) => {
    const colour = COLOURS[i % COLOURS.length]
    const x = Math.round(face.box.x * sx)
    const y = Math.round(face.box.y * sy)
    const w = Math.round(face.box.width * sx)
    const h = Math.round(face.box.height * sy)
    ctx.lineWidth = line
    ctx.strokeStyle = colour
    ctx.strokeRect(x + line / 2, y + line / 2, Math.max(0, w - line), Math.max(0, h - line))
    const label = `${i + 1}: ${ageText(face)} · ${genderText(face)}`
    ctx.font = `600 ${fontSize}px system-ui, sans-serif`
    const textWidth = ctx.measureText(label).width
    const pad = Math.round(fontSize / 3)
    const labelHeight = fontSize + 2 * pad
    // Above the box when there is room, else inside its top edge.
    const ly = y - labelHeight >= 0 ? y - labelHeight : y + line
    const lx = Math.min(Math.max(0, x), Math.max(0, canvas.width - textWidth - 2 * pad))
    ctx.fillStyle = colour
    ctx.fillRect(lx, ly, textWidth + 2 * pad, labelHeight)
    ctx.fillStyle = '#fff'
    ctx.textBaseline = 'top'
    ctx.fillText(label, lx + pad, ly + pad)

    const item = document.createElement('li')
    item.dataset.box = [x, y, w, h].join(',')
    item.dataset.colour = colour
    item.dataset.age = String(face.age)
    item.dataset.gender = face.gender
    const swatch = document.createElement('span')
    swatch.className = 'swatch'
    swatch.style.background = colour
    const range = face.ageRange
      ? `age ${face.age.toFixed(1)}, ${Math.round(face.ageRange.level * 100)}% range ${face.ageRange.low.toFixed(1)}–${face.ageRange.high.toFixed(1)}`
      : `age ${face.age.toFixed(1)} (no calibrated range for this model)`
    const how = face.method === 'detector' ? `detector score ${face.score.toFixed(2)}` : 'whole image'
    item.append(swatch, `${range}; ${face.gender} (${genderConfidence(face)}%); ${how}`)
    facesList.append(item)
  })
  const n = answer.faces.length
  if (answer.fellBack) {
    note.textContent =
      'No face was found, so the whole photo was read as one face: the answer is only ' +
      'meaningful if the photo is a close-up of one face.'
  } else if (n === 0) {
    note.textContent = 'No face was found (mode "detect"). Try mode "auto" or "whole" for a close-up.'
  } else {
    note.textContent = ''
  }
  note.hidden = note.textContent === ''
  result.hidden = false
  setStatus(answer.fellBack ? 'No face found: whole photo read as one face.' : `${n} face${n === 1 ? '' : 's'} found.`)
}

function describeModel(model) {
  const parts = [`Model ${model.runId} (${model.architecture}, ${model.inputSize} px)`]
  parts.push(model.detector ? `face detector ${model.detector}` : 'no face detector on this server')
  parts.push(
    model.ageInterval
      ? `age ranges calibrated to ${Math.round(model.ageInterval.level * 100)}%`
      : 'no calibrated age ranges for this model'
  )
  modelLine.textContent = parts.join(' · ')
}

fileInput.addEventListener('change', () => {
  const file = fileInput.files?.[0]
  if (file) void run(file, file.name)
})

// A photo may be dropped anywhere on the page (one listener: the drop zone's events bubble up to it).
document.addEventListener('dragover', (event) => {
  event.preventDefault()
  drop.classList.add('over')
})
document.addEventListener('dragleave', (event) => {
  if (event.relatedTarget === null) drop.classList.remove('over')
})
document.addEventListener('drop', (event) => {
  event.preventDefault()
  drop.classList.remove('over')
  const file = event.dataTransfer?.files?.[0]
  if (file) void run(file, file.name)
})

modeSelect.addEventListener('change', () => {
  if (lastPhoto) void run(lastPhoto.blob, lastPhoto.name)
})

function stopCamera() {
  stream?.getTracks().forEach((t) => {
    t.stop()
  })
  stream = undefined
  video.srcObject = null
  camera.hidden = true
}

if (!navigator.mediaDevices?.getUserMedia) {
  cameraStart.disabled = true
  cameraStart.title = 'The camera needs HTTPS (or localhost) and a browser that allows it'
}

cameraStart.addEventListener('click', async () => {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'user' }, audio: false })
    video.srcObject = stream
    camera.hidden = false
  } catch (err) {
    setStatus(`Cannot open the camera: ${err.message}`, { error: true })
  }
})

$('camera-stop').addEventListener('click', stopCamera)

$('snap').addEventListener('click', () => {
  if (!video.videoWidth) return
  const c = document.createElement('canvas')
  c.width = video.videoWidth
  c.height = video.videoHeight
  c.getContext('2d').drawImage(video, 0, 0)
  c.toBlob(
    (blob) => {
      if (blob) void run(blob, 'camera.jpg')
    },
    'image/jpeg',
    0.92
  )
})

document.body.dataset.state = 'ready'
