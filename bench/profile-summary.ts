import { profileMarkdown, summariseProfile } from './lib/profile.ts'

// Summarises any V8 .cpuprofile: `node bench/profile-summary.ts bench/results/profiles/FILE.cpuprofile [N]`.
const [file, n] = process.argv.slice(2)
if (file === undefined) {
  console.error('usage: node bench/profile-summary.ts FILE.cpuprofile [top-N]')
  process.exit(2)
}
console.log(profileMarkdown(file, summariseProfile(file, undefined, Number(n ?? 25))))
