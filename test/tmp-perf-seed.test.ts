import {generateItem} from '../src/lib/seed-data'
it('perf', () => {
  let t = Date.now(); for (let i = 0; i < 50000; i++) generateItem(i); console.log('gen2', Date.now() - t)
  t = Date.now(); for (let i = 0; i < 50000; i++) new Date(1e12 + i); console.log('date', Date.now() - t)
  t = Date.now(); for (let i = 0; i < 50000; i++) Array.from({length: 3}, () => 1); console.log('arrfrom', Date.now() - t)
  t = Date.now(); for (let i = 0; i < 50000; i++) new Set([1,2]); console.log('set', Date.now() - t)
  t = Date.now(); let x=0; for (let i = 0; i < 50000*60; i++) x+=Math.imul(i,3); console.log('imul', Date.now() - t)
})
