package secrets

import "fmt"

// Version is the ciphertext format version this package writes.
const Version = 1

// Envelope is a parsed ciphertext; see the package documentation for the
// format. Nonce and Sealed alias the bytes given to ParseCiphertext.
type Envelope struct {
	// Version is the format version.
	Version byte
	// KeyID is the ID of the data key that sealed the value.
	KeyID string
	// Nonce is the 12-byte AES-GCM nonce.
	Nonce []byte
	// Sealed is the AES-GCM ciphertext followed by its 16-byte tag.
	Sealed []byte
}

// ParseCiphertext splits a ciphertext into its parts without decrypting it.
// It checks every bound and returns an error wrapping ErrMalformed for
// anything but a well-formed version 1 ciphertext.
func ParseCiphertext(b []byte) (Envelope, error) {
	env, _, err := parseCiphertext(b)
	return env, err
}

// parseCiphertext also returns the header length: the header is
// authenticated along with the caller's associated data.
func parseCiphertext(b []byte) (Envelope, int, error) {
	if len(b) < 2 {
		return Envelope{}, 0, fmt.Errorf("%w: %d bytes, too short for a header", ErrMalformed, len(b))
	}
	if b[0] != Version {
		return Envelope{}, 0, fmt.Errorf("%w: unsupported version %d (want %d)", ErrMalformed, b[0], Version)
	}
	n := int(b[1])
	if n == 0 || n > maxKeyIDLen {
		return Envelope{}, 0, fmt.Errorf("%w: key ID length %d is not between 1 and %d", ErrMalformed, n, maxKeyIDLen)
	}
	hdr := 2 + n
	if len(b) < hdr+nonceSize+tagSize {
		return Envelope{}, 0, fmt.Errorf("%w: %d bytes, too short for a key ID of %d bytes, a nonce and a tag", ErrMalformed, len(b), n)
	}
	id := string(b[2:hdr])
	if !validKeyID(id) {
		return Envelope{}, 0, fmt.Errorf("%w: key ID is not made of [A-Za-z0-9._-]", ErrMalformed)
	}
	return Envelope{
		Version: b[0],
		KeyID:   id,
		Nonce:   b[hdr : hdr+nonceSize : hdr+nonceSize],
		Sealed:  b[hdr+nonceSize:],
	}, hdr, nil
}

// appendHeader appends a version 1 header naming keyID, which must be valid.
func appendHeader(dst []byte, keyID string) []byte {
	dst = append(dst, Version, byte(len(keyID)))
	return append(dst, keyID...)
}

// additionalData is what AES-GCM authenticates: the ciphertext header, then
// the caller's associated data. The header is length-prefixed, so the split
// between the two is unambiguous.
func additionalData(header, aad []byte) []byte {
	ad := make([]byte, 0, len(header)+len(aad))
	ad = append(ad, header...)
	return append(ad, aad...)
}
