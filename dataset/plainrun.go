package dataset

// plainRun returns the length of the longest prefix of s that a JSON string
// holds as it is: ASCII with no control character, quote or backslash. It
// tests 8 bytes at a time, so the string scanners and encoders only look at
// the bytes that need them.
func plainRun[T string | []byte](s T) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// Whether any byte is below 0x20, equal to '"' or '\\', or at
		// least 0x80 (the classic "has a byte less than n" and "has a zero
		// byte" tests: exact for whether any byte does, not for which).
		ctl := (x - ones*0x20) &^ x
		q := x ^ ones*'"'
		q = (q - ones) &^ q
		bs := x ^ ones*'\\'
		bs = (bs - ones) &^ bs
		if (ctl|q|bs|x)&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			break
		}
	}
	return i
}
