// A training script that does not implement the protocol, for command-template
// runners: `train-script.mjs OUT_FILE MODE ...args`. It writes its argv to
// OUT_FILE; MODE `ok` exits 0, `oom` prints a PyTorch OOM and exits 1.
import { writeFileSync } from 'node:fs';

const [outFile, mode, ...args] = process.argv.slice(2);
writeFileSync(outFile, JSON.stringify({ args, cudaVisibleDevices: process.env.CUDA_VISIBLE_DEVICES ?? null }));
console.log('epoch 1 step 1 loss 0.5');
if (mode === 'oom') {
  process.stderr.write('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 14.75 GiB of which 3.06 MiB is free.\n');
  process.exit(1);
}
