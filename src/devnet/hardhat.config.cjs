// Hardhat 2 as the devnet's local L1 (src/devnet/l1-node.ts starts `hardhat node` with this file).
// chainId 31337 is Hardhat's usual id. No hardfork is pinned: the default of hardhat 2.29 / EDR is
// newer than Cancun, so it accepts EIP-4844 blob txs in the network-wrapper form (test/devnet/l1.test.ts).
module.exports = { solidity: '0.8.28', networks: { hardhat: { chainId: 31337 } } };
