// Command tlogcheck is an independent verifier of a C2SP tlog-tiles transparency log
// (https://c2sp.org/tlog-tiles, https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note).
//
// It shares no code with Custody's Rust implementation: the signed note is opened by
// Go's golang.org/x/mod/sumdb/note, and every Merkle computation (leaf hashes, tree
// hash, inclusion and consistency proofs) is done by golang.org/x/mod/sumdb/tlog, the
// code that checks go.sum lookups. Only the C2SP file layout, the entry bundles and the
// checkpoint body are read here by hand. Standard library plus x/mod 0.7.0, GOPATH
// mode. The tiles for the checkpoint's size must all be there (partial ones included).
//
// Usage: tlogcheck -vkey NAME+HEX8+BASE64 -dir DIR [-old OLD_CHECKPOINT_FILE]
//
// On success it prints one JSON line and exits 0; on a failed check it prints
// "tlogcheck: <what failed>" to stderr and exits 1; usage errors exit 2.
package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8 // C2SP tiles are always 2^8 = 256 hashes (or entries) wide

var emptyRoot = tlog.Hash(sha256.Sum256(nil)) // RFC 6962 root of the empty tree

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// openCheckpoint verifies the signed note against the one trusted key and parses the
// body: origin, decimal size, base64 root hash, then optional extension lines.
func openCheckpoint(file string, verifier note.Verifier) (checkpoint, error) {
	msg, err := os.ReadFile(file)
	if err != nil {
		return checkpoint{}, err
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return checkpoint{}, fmt.Errorf("%s: signature: %v", file, err)
	}
	lines := strings.Split(n.Text, "\n") // Open ensures Text ends with "\n"
	if len(lines) < 4 || lines[0] == "" {
		return checkpoint{}, fmt.Errorf("%s: checkpoint body has fewer than 3 lines", file)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return checkpoint{}, fmt.Errorf("%s: bad tree size %q", file, lines[1])
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		return checkpoint{}, fmt.Errorf("%s: bad root hash %q", file, lines[2])
	}
	var root tlog.Hash
	copy(root[:], raw)
	return checkpoint{lines[0], size, root}, nil
}

// c2spPath maps Go's tile coordinates to the C2SP layout: Go writes
// tile/<H>/<L>/<N>[.p/<W>] and tile/<H>/data/... for entries; C2SP drops the height
// (always 8) and calls the entry bundles "entries".
func c2spPath(dir string, t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", height))
	p = strings.Replace(p, "data/", "entries/", 1)
	return filepath.Join(dir, "tile", filepath.FromSlash(p))
}

type tileReader struct{ dir string }

func (r tileReader) Height() int { return height }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := os.ReadFile(c2spPath(r.dir, t))
		if err != nil {
			return nil, err
		}
		if len(data) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("%s: %d bytes, want %d", c2spPath(r.dir, t), len(data), t.W*tlog.HashSize)
		}
		out[i] = data
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// bundle splits an entry bundle into its entries (big-endian uint16 length + bytes).
func bundle(data []byte) ([][]byte, error) {
	var entries [][]byte
	for len(data) > 0 {
		if len(data) < 2 || len(data) < 2+int(binary.BigEndian.Uint16(data)) {
			return nil, errors.New("truncated entry")
		}
		n := int(binary.BigEndian.Uint16(data))
		entries = append(entries, data[2:2+n])
		data = data[2+n:]
	}
	return entries, nil
}

type result struct {
	Origin         string `json:"origin"`
	Size           int64  `json:"size"`
	Entries        int64  `json:"entries"`
	Root           string `json:"root"`
	ConsistentWith *int64 `json:"consistentWith"`
}

func check(dir, oldFile string, verifier note.Verifier) (*result, error) {
	cp, err := openCheckpoint(filepath.Join(dir, "checkpoint"), verifier)
	if err != nil {
		return nil, err
	}
	// x/mod 0.7.0's TileHashReader does not authenticate every tile it returns (its
	// parent check starts at len(stx), an index count, not a tile count), so nothing
	// here trusts a hash because the reader returned it: every claim is a proof checked
	// against the signed root.
	thr := tlog.TileHashReader(tlog.Tree{N: cp.size, Hash: cp.root}, tileReader{dir})
	if cp.size == 0 {
		if cp.root != emptyRoot {
			return nil, errors.New("empty tree whose root is not SHA-256 of nothing")
		}
	} else if th, err := tlog.TreeHash(cp.size, thr); err != nil {
		return nil, fmt.Errorf("tree hash from tiles: %v", err)
	} else if th != cp.root {
		return nil, fmt.Errorf("tiles give root %v, checkpoint says %v", th, cp.root)
	}

	count := int64(0)
	for start := int64(0); start < cp.size; start += 1 << height {
		w := cp.size - start
		if w > 1<<height {
			w = 1 << height
		}
		t := tlog.Tile{H: height, L: -1, N: start >> height, W: int(w)}
		data, err := os.ReadFile(c2spPath(dir, t))
		if err != nil {
			return nil, fmt.Errorf("entry bundle: %v", err)
		}
		entries, err := bundle(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", c2spPath(dir, t), err)
		}
		if int64(len(entries)) != w {
			return nil, fmt.Errorf("%s: %d entries, want %d", c2spPath(dir, t), len(entries), w)
		}
		for j, e := range entries {
			i := start + int64(j)
			proof, err := tlog.ProveRecord(cp.size, i, thr)
			if err != nil {
				return nil, fmt.Errorf("entry %d: inclusion proof: %v", i, err)
			}
			if err := tlog.CheckRecord(proof, cp.size, cp.root, i, tlog.RecordHash(e)); err != nil {
				return nil, fmt.Errorf("entry %d: inclusion proof does not verify: %v", i, err)
			}
			count++
		}
	}
	if count != cp.size {
		return nil, fmt.Errorf("entry bundles hold %d entries, checkpoint says %d", count, cp.size)
	}
	out := &result{cp.origin, cp.size, count, base64.StdEncoding.EncodeToString(cp.root[:]), nil}
	if oldFile == "" {
		return out, nil
	}

	old, err := openCheckpoint(oldFile, verifier)
	switch {
	case err != nil:
		return nil, err
	case old.origin != cp.origin:
		return nil, fmt.Errorf("old checkpoint is for origin %q, not %q", old.origin, cp.origin)
	case old.size > cp.size:
		return nil, fmt.Errorf("old checkpoint size %d is larger than %d", old.size, cp.size)
	case old.size == 0 && old.root != emptyRoot:
		return nil, errors.New("old checkpoint: empty tree whose root is not SHA-256 of nothing")
	case old.size > 0:
		proof, err := tlog.ProveTree(cp.size, old.size, thr)
		if err != nil {
			return nil, fmt.Errorf("consistency proof: %v", err)
		}
		if err := tlog.CheckTree(proof, cp.size, cp.root, old.size, old.root); err != nil {
			return nil, fmt.Errorf("tree %d is not an append-only extension of old tree %d: %v", cp.size, old.size, err)
		}
	}
	out.ConsistentWith = &old.size
	return out, nil
}

func main() {
	vkey := flag.String("vkey", "", "verifier key of the log, NAME+HEX8+BASE64")
	dir := flag.String("dir", "", "directory holding checkpoint and tile/")
	old := flag.String("old", "", "an older checkpoint the log must be consistent with")
	flag.Parse()
	if *vkey == "" || *dir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: tlogcheck -vkey NAME+HEX8+BASE64 -dir DIR [-old OLD_CHECKPOINT_FILE]")
		os.Exit(2)
	}
	verifier, err := note.NewVerifier(*vkey)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlogcheck: bad -vkey: %v\n", err)
		os.Exit(2)
	}
	out, err := check(*dir, *old, verifier)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlogcheck: %v\n", err)
		os.Exit(1)
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
}
