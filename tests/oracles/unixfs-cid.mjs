// Prints the root CID that Helia's importer (ipfs-unixfs-importer) gives a file or a tree,
// configured as one of hfspider's presets. Usage: node unixfs-cid.mjs PRESET PATH
// (a directory is added recursively, its own name ignored, like `ipfs add -r`).
import { createReadStream, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

const kubo = (cidVersion, rawLeaves) => ({
  cidVersion,
  rawLeaves,
  leafType: 'file',
  chunker: fixedSize({ chunkSize: 262144 }),
  layout: balanced({ maxChildrenPerNode: 174 })
})
const PRESETS = {
  kubo: kubo(0, false),
  'kubo-v1': kubo(1, true),
  'unixfs-v1-2025': { profile: 'unixfs-v1-2025' }
}

const [preset, path] = process.argv.slice(2)
if (!(preset in PRESETS) || !path) {
  console.error('usage: node unixfs-cid.mjs kubo|kubo-v1|unixfs-v1-2025 PATH')
  process.exit(2)
}

function * entries (root, dir) {
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name)
    const rel = join('root', relative(root, full))
    if (statSync(full).isDirectory()) {
      yield { path: rel }
      yield * entries(root, full)
    } else {
      yield { path: rel, content: createReadStream(full) }
    }
  }
}

const source = statSync(path).isDirectory()
  ? [{ path: 'root' }, ...entries(path, path)]
  : [{ content: createReadStream(path) }]
const discard = { put: async (cid) => cid }
let last
for await (const entry of importer(source, discard, PRESETS[preset])) {
  if (entry.path === 'root' || !statSync(path).isDirectory()) last = entry
}
console.log(last.cid.toString())
