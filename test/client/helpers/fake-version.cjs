// A stand-in CLI for cli-helper.test.ts: answers --version like the real ones.
if (process.argv.includes('--version')) console.log('fake 1.2.3')
