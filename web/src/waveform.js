// Draws the waveform lane's peaks (numbers in 0..1, one per bucket; docs/api.md, Processing lanes)
// as mirrored bars, sharp on high-density screens.

export function drawWaveform(canvas, peaks) {
  const ratio = window.devicePixelRatio || 1
  const width = canvas.clientWidth || 640
  const height = canvas.clientHeight || 80
  canvas.width = Math.round(width * ratio)
  canvas.height = Math.round(height * ratio)
  const context = canvas.getContext('2d')
  context.scale(ratio, ratio)
  context.clearRect(0, 0, width, height)
  context.fillStyle = getComputedStyle(canvas).color || '#3b5bdb'
  const middle = height / 2
  // Scaled to the loudest peak, as players draw it: a quiet master still shows its shape.
  const loudest = peaks.reduce((most, peak) => Math.max(most, peak), 0)
  const gain = loudest > 0 ? 1 / loudest : 1
  // One bar per CSS pixel at most: each bar is the loudest bucket it covers.
  const bars = Math.max(1, Math.min(peaks.length, Math.floor(width)))
  const perBar = peaks.length / bars
  const barWidth = width / bars
  for (let bar = 0; bar < bars; bar++) {
    let peak = 0
    const last = Math.min(peaks.length, Math.ceil((bar + 1) * perBar))
    for (let index = Math.floor(bar * perBar); index < last; index++) peak = Math.max(peak, peaks[index])
    const half = Math.max(0.5, Math.min(1, peak * gain) * middle)
    context.fillRect(bar * barWidth, middle - half, Math.max(1, barWidth - 0.5), half * 2)
  }
}
