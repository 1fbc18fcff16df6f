package fs

import (
	"fmt"
	"os/exec"
	"strings"
)

func fusermountU(mountpoint string, lazy bool) error {
	args := []string{"-u"}
	if lazy {
		args = append(args, "-z")
	}
	bin, err := exec.LookPath("fusermount3")
	if err != nil {
		if bin, err = exec.LookPath("fusermount"); err != nil {
			return fmt.Errorf("unmounting %s needs root or fusermount3 (apt install fuse3)", mountpoint)
		}
	}
	out, err := exec.Command(bin, append(args, mountpoint)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %s", bin, strings.Join(args, " "), strings.TrimSpace(string(out)))
	}
	return nil
}
