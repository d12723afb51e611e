// Command librahost is the command-line interface: it parses flags, prints
// results and calls package host, which does the work.
//
//	librahost build [-o out.wasm] <Go package dir | file.c ... | app.wasm>
//	librahost run [flags] app.wasm [--] [guest args]
//	librahost checkpoint --state DIR
//	librahost restore --state DIR [--epoch N]
//	librahost ckpt ls --state DIR
//	librahost ckpt inspect --state DIR [--epoch N]
package main
