/**
 * EIP-4844 sidecars for the devnet and tests: a viem `Kzg` over micro-eth-signer (the KZG context
 * of src/policy/blobs.ts: fast trusted setup, built lazily once), and blobs packed with OP's Ecotone
 * encoding (`encodeBlob`), not viem's `toBlobs`, whose packing op-node does not decode.
 */
import { bytesToHex, defineKzg, hexToBytes, type BlobSidecars, type Hex, type Kzg } from 'viem';
import { blobCommitment, encodeBlob, kzg } from '../policy/blobs.ts';

/** viem's byte-array `Kzg` interface; micro-eth-signer speaks 0x-hex. */
export const microKzg: Kzg = defineKzg({
  blobToKzgCommitment: (blob) => blobCommitment(blob),
  computeBlobKzgProof: (blob, commitment) => hexToBytes(kzg().computeBlobProof(bytesToHex(blob), bytesToHex(commitment)) as Hex),
});

/**
 * One blob per rollup payload (`0x00 ‖ frames`, ≤ 130044 bytes each): derivation decodes and parses
 * every blob on its own (ecotone/derivation.md "Ecotone: Blob Retrieval"), so a payload is never
 * split across blobs. Throws `BlobError` ('too-large').
 */
export function blobsFor(payload: Uint8Array | readonly Uint8Array[]): Uint8Array[] {
  return (payload instanceof Uint8Array ? [payload] : payload).map(encodeBlob);
}

/** Blob, commitment and proof per blob (hex), for `serializeTransaction({ ..., sidecars })`. */
export function sidecarsFor(blobs: readonly Uint8Array[]): BlobSidecars<Hex> {
  return blobs.map((blob) => {
    const commitment = microKzg.blobToKzgCommitment(blob);
    const proof = microKzg.computeBlobKzgProof(blob, commitment);
    return { blob: bytesToHex(blob), commitment: bytesToHex(commitment), proof: bytesToHex(proof) };
  });
}
