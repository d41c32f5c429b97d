'use strict'
// Runs before `npm start` and `npm test` on whatever Node the shell has, so it is plain CommonJS: on a Node older than
// the gateway's, one line says what is wrong and how to fix it for good, instead of ERR_UNKNOWN_FILE_EXTENSION ".ts".
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 19)) {
  console.error(`Qwen Gateway needs Node.js 22.19 or later (24 LTS); this shell runs Node ${process.version} (${process.execPath}). ` +
    'Fix for good: npm install --prefix ~/.node24 node@24 && echo \'export PATH="$HOME/.node24/node_modules/.bin:$PATH"\' >> ~/.profile, ' +
    'then open a new shell (with nvm: nvm install, which reads .nvmrc).')
  process.exit(1)
}
