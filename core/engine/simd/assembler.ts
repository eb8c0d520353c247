/**
 * A tiny WebAssembly binary writer: just enough to build loops over memory with 128-bit SIMD, for the few
 * kernels that JS cannot run fast (V8 does not vectorize; XNNPACK has no fused equivalent). No toolchain is
 * needed at build or run time: the module is assembled from these bytes when the engine starts.
 *
 * Functions are written as a flat instruction stream with {@link Code}'s chainable methods; locals are
 * numbered (parameters first). Only what the kernels use is here.
 * @module
 */

export const I32 = 0x7f
export const F32 = 0x7d
export const V128 = 0x7b
export type ValType = typeof I32 | typeof F32 | typeof V128

function uleb(n: number): number[] {
  const out: number[] = []
  do {
    let byte = n & 0x7f
    n >>>= 7
    if (n !== 0) byte |= 0x80
    out.push(byte)
  } while (n !== 0)
  return out
}

function sleb(n: number): number[] {
  const out: number[] = []
  for (;;) {
    const byte = n & 0x7f
    n >>= 7
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte)
      return out
    }
    out.push(byte | 0x80)
  }
}

const utf8 = (s: string) => [...uleb(Buffer.byteLength(s)), ...Buffer.from(s)]
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()]
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body]

/** SIMD opcodes (after the 0xfd prefix). */
const SIMD = {
  load: 0x00,
  load32Splat: 0x09,
  store: 0x0b,
  shuffle: 0x0d,
  i32x4splat: 0x11,
  f32x4splat: 0x13,
  f32x4gt: 0x44,
  bitselect: 0x52,
  f32x4sqrt: 0xe3,
  f32x4add: 0xe4,
  f32x4sub: 0xe5,
  f32x4mul: 0xe6,
  f32x4div: 0xe7,
  i32x4add: 0xae,
  /** Relaxed SIMD (Node 22+ / V8 11.4+): `a * b + c`, fused or not as the hardware has it. */
  f32x4relaxedMadd: 0x105,
} as const

export class Code {
  readonly bytes: number[] = []
  private emit(...b: number[]): this {
    this.bytes.push(...b)
    return this
  }
  get(i: number) {
    return this.emit(0x20, ...uleb(i))
  }
  set(i: number) {
    return this.emit(0x21, ...uleb(i))
  }
  tee(i: number) {
    return this.emit(0x22, ...uleb(i))
  }
  i32(n: number) {
    return this.emit(0x41, ...sleb(n | 0))
  }
  f32(x: number) {
    const b = Buffer.alloc(4)
    b.writeFloatLE(x)
    return this.emit(0x43, ...b)
  }
  /** `block` + `loop`: `body` runs while it branches to the loop (depth 0); `br 1` leaves. */
  loop(body: (c: this) => void) {
    this.emit(0x02, 0x40, 0x03, 0x40)
    body(this)
    return this.emit(0x0b, 0x0b)
  }
  /** Branch to the enclosing loop's start (continue) if the i32 on the stack is non-zero. */
  continueIf() {
    return this.emit(0x0d, 0)
  }
  /** Leave the enclosing loop if the i32 on the stack is non-zero. */
  breakIf() {
    return this.emit(0x0d, 1)
  }
  ifThen(body: (c: this) => void) {
    this.emit(0x04, 0x40)
    body(this)
    return this.emit(0x0b)
  }
  add() {
    return this.emit(0x6a)
  }
  sub() {
    return this.emit(0x6b)
  }
  mul() {
    return this.emit(0x6c)
  }
  shl() {
    return this.emit(0x74)
  }
  ltS() {
    return this.emit(0x48)
  }
  geS() {
    return this.emit(0x4e)
  }
  gtS() {
    return this.emit(0x4a)
  }
  and() {
    return this.emit(0x71)
  }
  f32Load(offset = 0) {
    return this.emit(0x2a, 2, ...uleb(offset))
  }
  f32Store(offset = 0) {
    return this.emit(0x38, 2, ...uleb(offset))
  }
  i32Load(offset = 0) {
    return this.emit(0x28, 2, ...uleb(offset))
  }
  i32Store(offset = 0) {
    return this.emit(0x36, 2, ...uleb(offset))
  }
  f32Add() {
    return this.emit(0x92)
  }
  f32Sub() {
    return this.emit(0x93)
  }
  f32Mul() {
    return this.emit(0x94)
  }
  f32Div() {
    return this.emit(0x95)
  }
  f32Sqrt() {
    return this.emit(0x91)
  }
  f32Gt() {
    return this.emit(0x5e)
  }
  select() {
    return this.emit(0x1b)
  }
  ltU() {
    return this.emit(0x49)
  }
  /** v128 constant of four i32 lanes. */
  i32x4Const(a: number, b: number, c: number, d: number) {
    const bytes = Buffer.alloc(16)
    ;[a, b, c, d].forEach((v, i) => {
      bytes.writeInt32LE(v, i * 4)
    })
    return this.simd(0x0c, ...bytes)
  }
  private simd(op: number, ...imm: number[]) {
    return this.emit(0xfd, ...uleb(op), ...imm)
  }
  v128Load(offset = 0) {
    return this.simd(SIMD.load, 0, ...uleb(offset))
  }
  /** One float from memory into all four lanes. */
  v128Load32Splat(offset = 0) {
    return this.simd(SIMD.load32Splat, 2, ...uleb(offset))
  }
  v128Store(offset = 0) {
    return this.simd(SIMD.store, 0, ...uleb(offset))
  }
  /** Picks 4 float lanes from (a, b): 0-3 are a's lanes, 4-7 b's. */
  shuffle32(l0: number, l1: number, l2: number, l3: number) {
    const lanes = [l0, l1, l2, l3].flatMap((l) => [l * 4, l * 4 + 1, l * 4 + 2, l * 4 + 3])
    return this.simd(SIMD.shuffle, ...lanes)
  }
  f32x4Splat() {
    return this.simd(SIMD.f32x4splat)
  }
  i32x4Splat() {
    return this.simd(SIMD.i32x4splat)
  }
  f32x4Add() {
    return this.simd(SIMD.f32x4add)
  }
  f32x4Sub() {
    return this.simd(SIMD.f32x4sub)
  }
  f32x4Mul() {
    return this.simd(SIMD.f32x4mul)
  }
  f32x4Div() {
    return this.simd(SIMD.f32x4div)
  }
  f32x4Sqrt() {
    return this.simd(SIMD.f32x4sqrt)
  }
  f32x4Gt() {
    return this.simd(SIMD.f32x4gt)
  }
  i32x4Add() {
    return this.simd(SIMD.i32x4add)
  }
  /**
   * `a * b + c` on (a, b, c) from the stack: one rounding where the CPU has FMA (x86 FMA3, Arm NEON), two
   * (a mul then an add) where it does not; relaxed SIMD lets the runtime pick. Only a module for a runtime
   * with relaxed SIMD may use it (it does not validate elsewhere).
   */
  f32x4RelaxedMadd() {
    return this.simd(SIMD.f32x4relaxedMadd)
  }
  bitselect() {
    return this.simd(SIMD.bitselect)
  }
}

export interface FunctionDef {
  name: string
  params: ValType[]
  locals: ValType[]
  body: (c: Code) => void
}

/**
 * A module importing `env.memory` and exporting the given functions (no results). `sharedMemory`: the import is a
 * shared memory (limits 1..65536 pages), as a threaded build's heap is; a module declaring the other kind does
 * not instantiate over it.
 */
export function assemble(functions: FunctionDef[], { sharedMemory = false } = {}): Uint8Array {
  const types = functions.map((f) => [0x60, ...vec(f.params.map((p) => [p])), 0])
  const limits = sharedMemory ? [0x03, 1, ...uleb(65536)] : [0x00, 1]
  const imports = vec([[...utf8('env'), ...utf8('memory'), 0x02, ...limits]])
  const funcs = vec(functions.map((_, i) => uleb(i)))
  const exports = vec(functions.map((f, i) => [...utf8(f.name), 0x00, ...uleb(i)]))
  const bodies = functions.map((f) => {
    const code = new Code()
    f.body(code)
    const locals = vec(f.locals.map((t) => [1, t]))
    const body = [...locals, ...code.bytes, 0x0b]
    return [...uleb(body.length), ...body]
  })
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...section(2, imports),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, vec(bodies)),
  ])
}
