package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// FileName is the name of the results file inside a result directory.
const FileName = "results.json"

// Read reads and validates a results file, or FileName inside a directory.
func Read(path string) (*Run, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, FileName)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Decode(f, path)
}

// Decode reads and validates a run from r; name prefixes every error.
// The version is checked before the body is decoded, so a file from a newer
// major version fails with a version error rather than a type error.
func Decode(r io.Reader, name string) (*Run, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return decodeBytes(data, name)
}

// decodeBytes is Decode of data in memory.
func decodeBytes(data []byte, name string) (*Run, error) {
	var head struct {
		SchemaVersion *string `json:"schema_version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%s: not an imp2-bench results file (JSON: %w)", name, err)
	}
	if head.SchemaVersion == nil {
		return nil, fmt.Errorf("%s: schema_version: missing; not an imp2-bench results file", name)
	}
	if err := checkVersion(*head.SchemaVersion); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var run Run
	if err := json.Unmarshal(data, &run); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: %s: %s where %s is expected", name, te.Field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := run.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &run, nil
}

// Encode validates run and writes it as one line of JSON (thousands of
// queue samples make an indented file unwieldy; use jq to read it).
func Encode(w io.Writer, run *Run) error {
	if err := run.Validate(); err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(run)
}

// Write validates run and writes it to path atomically, so a crash never
// leaves a half-written file that CI would compare against.
func Write(path string, run *Run) error {
	var buf bytes.Buffer
	if err := Encode(&buf, run); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return WriteFileAtomic(path, buf.Bytes())
}

// WriteFileAtomic writes data to path (mode 0644) through a temporary file
// in the same directory renamed over it: readers see the old file or the
// new one, never a part.
func WriteFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
