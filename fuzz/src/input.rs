//! The byte language of the structured targets: a reader that never fails (missing bytes read as
//! zero, so every input is valid and libFuzzer's mutations stay meaningful) and the matching
//! writer the seed corpus is built with.

/// Reads fuzzer bytes as small integers and length-prefixed byte strings.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// One byte, 0 past the end.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A big-endian u16, zero-filled past the end.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// A byte string: a length byte (255 means a big-endian u16 length follows), then that many
    /// bytes or whatever is left.
    pub fn bytes(&mut self) -> &'a [u8] {
        let mut len = usize::from(self.u8());
        if len == 255 {
            len = usize::from(self.u16());
        }
        let len = len.min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        head
    }

    /// A byte string as text (invalid UTF-8 replaced).
    pub fn text(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Writes what [`Input`] reads; used to build the seed corpus.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    pub data: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.data.push(value);
        self
    }

    pub fn u16(&mut self, value: u16) -> &mut Self {
        self.data.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A byte string for [`Input::bytes`]; panics past 65,535 bytes (seeds are small).
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        if bytes.len() < 255 {
            self.data.push(bytes.len() as u8);
        } else {
            let len = u16::try_from(bytes.len()).expect("seed strings fit in a u16 length");
            self.data.push(255);
            self.data.extend_from_slice(&len.to_be_bytes());
        }
        self.data.extend_from_slice(bytes);
        self
    }

    pub fn text(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.data.extend_from_slice(bytes);
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree() {
        let long = vec![7u8; 300];
        let data = Writer::new()
            .u8(9)
            .u16(513)
            .bytes(b"abc")
            .bytes(&long)
            .text("")
            .finish();
        let mut input = Input::new(&data);
        assert_eq!(input.u8(), 9);
        assert_eq!(input.u16(), 513);
        assert_eq!(input.bytes(), b"abc");
        assert_eq!(input.bytes(), &long[..]);
        assert_eq!(input.text(), "");
        assert!(input.is_empty());
        assert_eq!(input.u8(), 0);
        assert_eq!(input.bytes(), b"");
    }
}
