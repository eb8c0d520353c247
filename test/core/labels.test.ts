import { describe, expect, it } from 'vitest'
import {
  AGE_BANDS,
  LabelsCsvError,
  RACE_NAMES,
  isJunkPath,
  lookupCsvLabel,
  parseLabelsCsv,
  parseUtkFaceName,
} from '../../core/labels.js'

describe('parseUtkFaceName', () => {
  it('parses a regular name', () => {
    expect(parseUtkFaceName('100_0_0_20170112213500903.jpg.chip.jpg')).toEqual({
      ok: true,
      label: { age: 100, gender: 0, race: 0 },
    })
    expect(parseUtkFaceName('1_1_4_20161221193016140.jpg.chip.jpg')).toEqual({
      ok: true,
      label: { age: 1, gender: 1, race: 4 },
    })
  })

  it.each([
    ['39_1_20170116174525125.jpg.chip.jpg', { age: 39, gender: 1 }],
    ['61_1_20170109142408075.jpg.chip.jpg', { age: 61, gender: 1 }],
    ['61_1_20170109150557335.jpg.chip.jpg', { age: 61, gender: 1 }],
  ])('accepts %s, which has no race field, without a race', (name, label) => {
    const result = parseUtkFaceName(name)
    expect(result).toEqual({ ok: true, label })
    expect(result.ok && 'race' in result.label).toBe(false)
  })

  it.each([
    ['55_0_0_20170116232725357jpg.chip.jpg', { age: 55, gender: 0, race: 0 }], // no dot
    ['24_0_1_20170116220224657 .jpg.chip.jpg', { age: 24, gender: 0, race: 1 }], // a space
    ['14_0_0_2017011022340900.jpg.chip.jpg', { age: 14, gender: 0, race: 0 }], // 16-digit date
    ['28_1_2_201701161846515488.jpg.chip.jpg', { age: 28, gender: 1, race: 2 }], // 18-digit date
    ['26_1_3_20170104235421282.jpg', { age: 26, gender: 1, race: 3 }], // the in-the-wild release's names
    ['30_1_2_20170101.PNG', { age: 30, gender: 1, race: 2 }],
  ])('accepts the quirky name %s', (name, label) => {
    expect(parseUtkFaceName(name)).toEqual({ ok: true, label })
  })

  it('ignores folders in archive paths, with either separator', () => {
    const label = { age: 20, gender: 1, race: 2 }
    expect(parseUtkFaceName('UTKFace/20_1_2_20170101.jpg.chip.jpg')).toEqual({ ok: true, label })
    expect(parseUtkFaceName('data\\part 1\\20_1_2_20170101.jpg.chip.jpg')).toEqual({ ok: true, label })
    expect(parseUtkFaceName('./a/b/c/20_1_2_20170101.jpg')).toEqual({ ok: true, label })
  })

  it('marks macOS metadata and dotfiles as junk, however they are named', () => {
    for (const name of [
      '__MACOSX/UTKFace/._20_1_2_20170101.jpg.chip.jpg',
      '__MACOSX/20_1_2_20170101.jpg.chip.jpg',
      'UTKFace/._20_1_2_20170101.jpg.chip.jpg',
      '.DS_Store',
      '.hidden/20_1_2_20170101.jpg',
    ]) {
      expect(parseUtkFaceName(name), name).toEqual({ ok: false, reason: 'junk' })
      expect(isJunkPath(name), name).toBe(true)
    }
    expect(isJunkPath('UTKFace/20_1_2_20170101.jpg.chip.jpg')).toBe(false)
    expect(isJunkPath('./UTKFace/20_1_2_20170101.jpg.chip.jpg')).toBe(false)
  })

  it.each([
    ['photo.jpg', 'bad-name'],
    ['IMG_0001.jpg', 'bad-name'],
    ['20_1.jpg', 'bad-name'],
    ['x_1_2_20170101.jpg', 'bad-name'],
    ['20_f_2_20170101.jpg', 'bad-name'],
    ['-3_1_2_20170101.jpg', 'bad-name'],
    ['121_0_0_20170101.jpg', 'age-out-of-range'],
    ['999_0_0_20170101.jpg', 'age-out-of-range'],
    ['20_2_0_20170101.jpg', 'bad-gender'],
    ['20_1_5_20170101.jpg', 'bad-race'],
    ['20_1_x_20170101.jpg', 'bad-race'],
  ])('rejects %s as %s', (name, reason) => {
    expect(parseUtkFaceName(name)).toEqual({ ok: false, reason })
  })

  it('accepts the ends of the age range, 0 and 120', () => {
    expect(parseUtkFaceName('0_0_0_20170101.jpg')).toMatchObject({ ok: true, label: { age: 0 } })
    expect(parseUtkFaceName('120_0_0_20170101.jpg')).toMatchObject({ ok: true, label: { age: 120 } })
  })
})

describe('parseLabelsCsv', () => {
  it('reads a plain csv, keyed by path and by base name', () => {
    const csv = parseLabelsCsv('filename,age,gender\nimgs/a.jpg,30,0\nb.png,41.5,1\n')
    expect(csv.rows).toBe(2)
    expect(csv.rejected).toEqual([])
    expect(csv.labels.get('imgs/a.jpg')).toEqual({ age: 30, gender: 0 })
    expect(csv.labels.get('a.jpg')).toEqual({ age: 30, gender: 0 })
    expect(csv.labels.get('b.png')).toEqual({ age: 41.5, gender: 1 })
  })

  it('tolerates a BOM, CRLF, quotes, spaces, blank lines, column order, case and extra columns', () => {
    const text =
      '\uFEFF Gender ,"AGE",File,notes,race\r\n' +
      '\r\n' +
      '1, 25 ,"my photos/x, y.jpg","said ""hi""\r\nover two lines",asian\r\n' +
      'female,7,z.jpg,,\r\n' +
      'M,60,w.jpg,,4'
    const csv = parseLabelsCsv(Buffer.from(text, 'utf8'))
    expect(csv.rejected).toEqual([])
    expect(csv.labels.get('my photos/x, y.jpg')).toEqual({ age: 25, gender: 1, race: 2 })
    expect(csv.labels.get('x, y.jpg')).toEqual({ age: 25, gender: 1, race: 2 })
    expect(csv.labels.get('z.jpg')).toEqual({ age: 7, gender: 1 })
    expect(csv.labels.get('w.jpg')).toEqual({ age: 60, gender: 0, race: 4 })
  })

  it('reports bad rows with reasons and line numbers instead of throwing', () => {
    const text = [
      'filename,age,gender,race',
      'ok.jpg,20,0,1',
      'old.jpg,130,0,',
      'neg.jpg,-1,0,',
      'words.jpg,twenty,0,',
      'empty-age.jpg,,1,',
      'g.jpg,20,2,',
      'r.jpg,20,1,9',
      'short.jpg,20',
      ',20,1,',
      'ok.jpg,21,1,',
    ].join('\n')
    const csv = parseLabelsCsv(text)
    expect(csv.rows).toBe(1)
    expect(csv.rejected).toEqual([
      { line: 3, filename: 'old.jpg', reason: 'age-out-of-range' },
      { line: 4, filename: 'neg.jpg', reason: 'bad-age' },
      { line: 5, filename: 'words.jpg', reason: 'bad-age' },
      { line: 6, filename: 'empty-age.jpg', reason: 'bad-row' },
      { line: 7, filename: 'g.jpg', reason: 'bad-gender' },
      { line: 8, filename: 'r.jpg', reason: 'bad-race' },
      { line: 9, filename: 'short.jpg', reason: 'bad-row' },
      { line: 10, filename: '', reason: 'bad-row' },
      { line: 11, filename: 'ok.jpg', reason: 'duplicate-row' },
    ])
    expect(csv.labels.get('ok.jpg')).toEqual({ age: 20, gender: 0, race: 1 })
    expect(csv.rejectedNames.get('old.jpg')).toBe('age-out-of-range')
  })

  it('counts line numbers across quoted line breaks', () => {
    const csv = parseLabelsCsv('filename,age,gender,note\na.jpg,1,0,"x\ny"\nb.jpg,200,0,\n')
    expect(csv.rejected).toEqual([{ line: 4, filename: 'b.jpg', reason: 'age-out-of-range' }])
  })

  it('throws a LabelsCsvError when a required column is missing', () => {
    expect(() => parseLabelsCsv('filename,age\na.jpg,3\n')).toThrow(LabelsCsvError)
    expect(() => parseLabelsCsv('')).toThrow(/missing filename, age, gender/)
  })

  it('leaves out base names that two paths share, and looks up relative, full and base paths', () => {
    const csv = parseLabelsCsv('filename,age,gender\nx/a.jpg,10,0\ny/a.jpg,20,1\nsub/b.jpg,30,0\n')
    expect(csv.labels.has('a.jpg')).toBe(false)
    expect(lookupCsvLabel(csv, 'data/x/a.jpg', 'data/')).toEqual({ label: { age: 10, gender: 0 } })
    expect(lookupCsvLabel(csv, 'y/a.jpg')).toEqual({ label: { age: 20, gender: 1 } })
    expect(lookupCsvLabel(csv, 'z/a.jpg')).toBeUndefined()
    expect(lookupCsvLabel(csv, 'elsewhere/b.jpg')).toEqual({ label: { age: 30, gender: 0 } })
  })
})

describe('metric groups', () => {
  it('has five race names and ten-year age bands ending in 70+', () => {
    expect(RACE_NAMES).toEqual(['white', 'black', 'asian', 'indian', 'other'])
    expect(AGE_BANDS[0]).toBe('0-9')
    expect(AGE_BANDS.at(-1)).toBe('70+')
  })
})
