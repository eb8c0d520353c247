import { describe, expect, it } from 'vitest'
import { suppressNested } from '../../core/face-detector.js'

const face = (x: number, y: number, size: number, score: number) => ({
  box: { x, y, width: size, height: size },
  score,
})

describe('suppressNested', () => {
  it('drops a box lying mostly inside a better one, which IoU-based NMS keeps', () => {
    const big = face(0, 0, 100, 0.9)
    const inner = face(20, 40, 50, 0.7) // IoU 0.25, but wholly inside the big box
    expect(suppressNested([big, inner])).toEqual([big])
  })

  it('keeps separate faces and faces that only touch', () => {
    const a = face(0, 0, 100, 0.9)
    const b = face(150, 0, 100, 0.8)
    const c = face(90, 90, 40, 0.7) // 10×10 of 40×40 inside a: 6 %
    expect(suppressNested([a, b, c])).toEqual([a, b, c])
  })

  it('compares with kept faces only, best first', () => {
    const a = face(0, 0, 100, 0.9)
    const b = face(10, 10, 60, 0.8) // inside a: dropped
    const c = face(20, 20, 30, 0.7) // inside b too, but b is gone; still inside a: dropped
    expect(suppressNested([a, b, c])).toEqual([a])
  })
})
