import { describe, expect, it } from 'vitest'
import { portablePath } from '../../trainer/load.js'

describe('portablePath', () => {
  it('writes a dataset path without this machine’s absolute prefix', () => {
    expect(portablePath('/work/wt/shared/data/utkface/UTKFace', '/work/wt/calib')).toBe(
      '../shared/data/utkface/UTKFace'
    )
    expect(portablePath('/home/me/repo/data/faces', '/home/me/repo')).toBe('data/faces')
    expect(portablePath('/tmp/agegender-x/UTKFace.zip', '/home/me/repo')).toBe('UTKFace.zip')
    expect(portablePath('../shared/data/utkface/UTKFace', '/anywhere')).toBe('../shared/data/utkface/UTKFace')
  })
})
