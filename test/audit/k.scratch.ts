import { keygen } from '/work/main/src/sim/simulator.ts';
const t0 = performance.now();
keygen(3, 5, { seed: 'x' });
console.log('sim keygen seeded', performance.now() - t0);
const t1 = performance.now();
keygen(3, 5);
console.log('sim keygen system', performance.now() - t1);
