/**
 * Labels: UTKFace file names and `labels.csv`.
 *
 * A UTKFace name is `age_gender_race_datetime.jpg.chip.jpg` (age in years, gender 0 male / 1 female,
 * race 0 white, 1 black, 2 asian, 3 indian, 4 other). The original release has quirks that must still parse:
 * a missing race field (`39_1_20170116174525125.jpg.chip.jpg`), a missing dot (`...357jpg.chip.jpg`), a space
 * before the extension (`...657 .jpg.chip.jpg`) and date fields of 16 to 18 digits. Archive paths may carry
 * folders, Windows separators, and junk that macOS adds (`__MACOSX/`, `._foo.jpg`) or dotfiles (`.DS_Store`):
 * junk is never a label, whatever its name looks like.
 *
 * A `labels.csv` (`filename,age,gender[,race,...]`) overrides file names, for datasets named otherwise.
 *
 * Nothing here throws on a bad label: results carry a stable reason code that the trainer counts and reports.
 * @module
 */
import { AGE_BANDS, RACE_NAMES, ageBand } from './metrics.js'

// The names used to group metrics live with the metrics; re-exported so label users need one import.
export { AGE_BANDS, RACE_NAMES, ageBand }

/**
 * Ages outside 0–120 are typos, not people: UTKFace spans 1–116 and the oldest verified human reached 122.
 * Age 0 (under one year) is valid.
 */
export const MIN_AGE = 0
export const MAX_AGE = 120

export interface Label {
  readonly age: number
  /** 0 male, 1 female. */
  readonly gender: 0 | 1
  /** Index into {@link RACE_NAMES}; absent when the name or the csv row does not say. */
  readonly race?: number
}

/** Why a name or a csv row gave no label. Stable: counted in reports and matched by tests. */
export type LabelReason =
  | 'junk'
  | 'bad-name'
  | 'bad-age'
  | 'age-out-of-range'
  | 'bad-gender'
  | 'bad-race'
  | 'bad-row'
  | 'duplicate-row'

export type LabelResult = { ok: true; label: Label } | { ok: false; reason: LabelReason }

/** Forward slashes, no leading `./` or `/`: the one spelling of a path inside a dataset. */
export function normalizePath(path: string): string {
  return path
    .replace(/\\/g, '/')
    .replace(/^(\.?\/)+/, '')
    .replace(/\/{2,}/g, '/')
}

export function baseName(path: string): string {
  const p = normalizePath(path)
  return p.slice(p.lastIndexOf('/') + 1)
}

/**
 * Metadata that archivers and operating systems add beside real files: anything under `__MACOSX/` or any
 * dot-named file or folder (`._foo.jpg` AppleDouble forks, `.DS_Store`, `.git/`).
 */
export function isJunkPath(path: string): boolean {
  return normalizePath(path)
    .split('/')
    .some((part) => part === '__MACOSX' || (part.startsWith('.') && part !== '.' && part !== '..'))
}

/**
 * `age_gender[_race]_rest`: the race field is optional (3 files of the original release lack it); `rest` is the
 * date and extension, whose oddities (missing dot, space, length) carry no label and are not checked.
 */
const UTKFACE_NAME = /^([^_]+)_([^_]+)_(?:([^_]+)_)?([^_].*)$/

/** Parses the label out of a UTKFace file name; folders in the path are ignored. */
export function parseUtkFaceName(path: string): LabelResult {
  if (isJunkPath(path)) return { ok: false, reason: 'junk' }
  const m = UTKFACE_NAME.exec(baseName(path))
  if (!m) return { ok: false, reason: 'bad-name' }
  const [, age, gender, race] = m
  // a name that does not start with two numbers is not a UTKFace name at all, rather than a bad label
  if (!/^\d+$/.test(age!) || !/^\d+$/.test(gender!)) return { ok: false, reason: 'bad-name' }
  return checkLabel(Number(age), gender!, race)
}

function checkLabel(age: number, gender: string, race: string | undefined): LabelResult {
  if (!Number.isFinite(age)) return { ok: false, reason: 'bad-age' }
  if (age < MIN_AGE || age > MAX_AGE) return { ok: false, reason: 'age-out-of-range' }
  const g = parseGender(gender)
  if (g === undefined) return { ok: false, reason: 'bad-gender' }
  if (race === undefined || race === '') return { ok: true, label: { age, gender: g } }
  const r = parseRace(race)
  if (r === undefined) return { ok: false, reason: 'bad-race' }
  return { ok: true, label: { age, gender: g, race: r } }
}

/** `0`/`1`, or (csv only, where people write words) `m`/`f`/`male`/`female`. */
function parseGender(text: string): 0 | 1 | undefined {
  const t = text.trim().toLowerCase()
  if (t === '0' || t === 'm' || t === 'male') return 0
  if (t === '1' || t === 'f' || t === 'female') return 1
  return undefined
}

/** `0`–`4`, or a name from {@link RACE_NAMES} (`others` too, as the UTKFace page spells it). */
function parseRace(text: string): number | undefined {
  const t = text.trim().toLowerCase()
  if (/^[0-4]$/.test(t)) return Number(t)
  const i = (RACE_NAMES as readonly string[]).indexOf(t === 'others' ? 'other' : t)
  return i >= 0 ? i : undefined
}

/** A `labels.csv` that cannot be used at all (no header with the required columns). */
export class LabelsCsvError extends Error {
  override readonly name = 'LabelsCsvError'
}

export interface LabelsCsv {
  /**
   * Labels keyed by the file name as written in the csv (normalised with {@link normalizePath}) and by its
   * base name. A base name that two rows share with different paths is left out: it would be ambiguous.
   */
  readonly labels: Map<string, Label>
  /**
   * Rows that gave no label, 1-based line numbers. Keyed like {@link labels} in {@link rejectedNames}, so
   * an image whose row was rejected is skipped for the row's reason rather than labelled from its file name.
   */
  readonly rejected: Array<{ line: number; filename: string; reason: LabelReason }>
  readonly rejectedNames: Map<string, LabelReason>
  /** Rows that gave a label. */
  readonly rows: number
}

const COLUMN_ALIASES: Record<string, 'filename' | 'age' | 'gender' | 'race'> = {
  filename: 'filename',
  file: 'filename',
  path: 'filename',
  name: 'filename',
  age: 'age',
  gender: 'gender',
  sex: 'gender',
  race: 'race',
}

/**
 * Parses a `labels.csv`: a header naming at least `filename`, `age` and `gender` (any order, any case; other
 * columns ignored, `race` used when present), then one row per image. Tolerates a UTF-8 BOM, CRLF, quoted
 * fields (with `""` escapes and line breaks), blank lines and spaces around values. Ages may be decimals.
 * @throws LabelsCsvError when the header lacks a required column.
 */
export function parseLabelsCsv(text: string | Uint8Array): LabelsCsv {
  const source = typeof text === 'string' ? text : new TextDecoder('utf-8').decode(text)
  const records = parseCsv(source.replace(/^\uFEFF/, ''))
  const header = records.shift()
  const columns = new Map<string, number>()
  header?.fields.forEach((h, i) => {
    const key = COLUMN_ALIASES[h.trim().toLowerCase()]
    if (key && !columns.has(key)) columns.set(key, i)
  })
  const missing = (['filename', 'age', 'gender'] as const).filter((c) => !columns.has(c))
  if (missing.length > 0) {
    throw new LabelsCsvError(
      `labels.csv: the header must name the columns filename, age and gender; missing ${missing.join(', ')}` +
        ` (header: ${JSON.stringify(header?.fields.join(',') ?? '')})`
    )
  }
  const col = (fields: string[], key: string) => {
    const i = columns.get(key)
    return i === undefined ? undefined : fields[i]?.trim()
  }

  const labels = new Map<string, Label>()
  const rejected: LabelsCsv['rejected'] = []
  const rejectedNames = new Map<string, LabelReason>()
  const seen = new Set<string>()
  const pathOfBase = new Map<string, string>()
  const ambiguous = new Set<string>()
  let rows = 0
  for (const { line, fields } of records) {
    if (fields.every((f) => f.trim() === '')) continue
    const filename = normalizePath(col(fields, 'filename') ?? '')
    const age = col(fields, 'age')
    const gender = col(fields, 'gender')
    let result: LabelResult
    if (filename === '' || age === undefined || age === '' || gender === undefined) {
      result = { ok: false, reason: 'bad-row' }
    } else if (seen.has(filename)) {
      result = { ok: false, reason: 'duplicate-row' }
    } else {
      // Number('') is 0 and Number(' 1e1 ') is 10: accept plain decimals only
      result = checkLabel(/^\d+(\.\d+)?$/.test(age) ? Number(age) : NaN, gender, col(fields, 'race'))
    }
    if (filename !== '') seen.add(filename)
    if (!result.ok) {
      rejected.push({ line, filename, reason: result.reason })
      if (filename !== '' && result.reason !== 'duplicate-row') rejectedNames.set(filename, result.reason)
      continue
    }
    rows++
    labels.set(filename, result.label)
    const base = baseName(filename)
    const other = pathOfBase.get(base)
    if (other !== undefined && other !== filename) ambiguous.add(base)
    else pathOfBase.set(base, filename)
  }
  // base-name keys last, so that an exact path always wins and ambiguous bases never resolve
  for (const [base, path] of pathOfBase) {
    if (!ambiguous.has(base) && !labels.has(base)) labels.set(base, labels.get(path)!)
  }
  for (const [path, reason] of [...rejectedNames]) {
    const base = baseName(path)
    if (!rejectedNames.has(base) && !labels.has(base)) rejectedNames.set(base, reason)
  }
  return { labels, rejected, rejectedNames, rows }
}

/**
 * Finds the label for a dataset entry in a parsed csv: by its path relative to the csv's folder, by its full
 * path, then by base name.
 * @param csvDir the folder of the `labels.csv` inside the dataset, `''` at the root.
 */
export function lookupCsvLabel(
  csv: LabelsCsv,
  path: string,
  csvDir = ''
): { label: Label } | { reason: LabelReason } | undefined {
  const full = normalizePath(path)
  const dir = normalizePath(csvDir).replace(/\/?$/, '/')
  const keys = [full.startsWith(dir) ? full.slice(dir.length) : undefined, full, baseName(full)]
  for (const key of keys) {
    if (key === undefined) continue
    const label = csv.labels.get(key)
    if (label) return { label }
    const reason = csv.rejectedNames.get(key)
    if (reason) return { reason }
  }
  return undefined
}

/**
 * RFC 4180 records with their starting line numbers. Hand-written because no csv library is installed and the
 * format needed is small; quotes may span line breaks.
 */
function parseCsv(text: string): Array<{ line: number; fields: string[] }> {
  const records: Array<{ line: number; fields: string[] }> = []
  let fields: string[] = []
  let field = ''
  let quoted = false
  let line = 1
  let recordLine = 1
  const endRecord = () => {
    fields.push(field)
    records.push({ line: recordLine, fields })
    fields = []
    field = ''
  }
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"'
        i++
      } else if (c === '"') {
        quoted = false
      } else {
        if (c === '\n') line++
        field += c
      }
    } else if (c === '"') {
      quoted = true
    } else if (c === ',') {
      fields.push(field)
      field = ''
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++
      endRecord()
      line++
      recordLine = line
    } else {
      field += c
    }
  }
  if (field !== '' || fields.length > 0) endRecord()
  return records
}
