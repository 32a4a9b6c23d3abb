import { Fn, Point, mulG, randomScalar } from './scalar-point.ts';
import type { Rng } from './random.ts';

/** Shamir polynomials, Feldman commitments and Lagrange interpolation (spec §2.2, §2.7). */

/** Random polynomial of degree `degree` with the given constant term; every coefficient ≠ 0. */
export function randomPolynomial(constant: bigint, degree: number, rng: Rng): bigint[] {
  const coeffs = [constant];
  for (let k = 1; k <= degree; k++) coeffs.push(randomScalar(rng));
  return coeffs;
}

/** f(x) by Horner's rule, mod n. */
export function evalPolynomial(coeffs: readonly bigint[], x: bigint): bigint {
  let acc = 0n;
  for (let k = coeffs.length - 1; k >= 0; k--) acc = Fn.add(Fn.mul(acc, x), coeffs[k]!);
  return acc;
}

/** F_k = a_k·G with constant-time multiplication (the coefficients are secret). */
export const feldmanCommit = (coeffs: readonly bigint[]): Point[] =>
  coeffs.map(mulG);

/** Σ_k x^k·F_k, Horner in the exponent; x and F are public. */
export function evalInExponent(F: readonly Point[], x: bigint): Point {
  let acc = Point.ZERO;
  for (let k = F.length - 1; k >= 0; k--) acc = (acc.is0() ? acc : acc.multiplyUnsafe(x)).add(F[k]!);
  return acc;
}

/** Feldman share check y·G == Σ_k x^k·F_k. Returns false (never throws) on any input. */
export function feldmanVerify(F: readonly Point[], x: bigint, y: bigint): boolean {
  if (F.length === 0) return false;
  const lhs = mulG(y);
  return lhs.equals(evalInExponent(F, x));
}

/** Π_{j∈xs, j≠i} (at − x_j) / (x_i − x_j): the Lagrange basis polynomial of x_i evaluated at `at`. */
export function lagrangeAt(xs: readonly bigint[], xi: bigint, at: bigint): bigint {
  if (new Set(xs).size !== xs.length) throw new RangeError('duplicate evaluation points');
  if (!xs.includes(xi)) throw new RangeError('x_i is not one of the evaluation points');
  let num = 1n, den = 1n;
  for (const xj of xs) {
    if (xj === xi) continue;
    num = Fn.mul(num, Fn.sub(at, xj));
    den = Fn.mul(den, Fn.sub(xi, xj));
  }
  if (den === 0n) throw new RangeError('duplicate evaluation points');
  return Fn.div(num, den);
}

/** λ_i = Π_{j≠i} x_j / (x_j − x_i): the Lagrange coefficient at 0 (spec §2.7). Public values only. */
export const lagrangeAtZero = (xs: readonly bigint[], xi: bigint): bigint => lagrangeAt(xs, xi, 0n);

/** Σ_k L_k(at)·P_k: interpolate public points "in the exponent" and evaluate at `at`. */
export function interpolateInExponent(xs: readonly bigint[], points: readonly Point[], at = 0n): Point {
  let acc = Point.ZERO;
  xs.forEach((x, k) => {
    const l = lagrangeAt(xs, x, at);
    if (l !== 0n) acc = acc.add(points[k]!.multiplyUnsafe(l));
  });
  return acc;
}
