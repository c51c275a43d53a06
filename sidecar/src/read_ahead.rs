//! Large reads under TLS.
//!
//! rustls asks its transport for about 4 KiB at a time (its deframer buffer
//! grows 4 KiB per read), so a bulk transfer would cost one `read` system
//! call per 4 KiB of TLS records. [`ReadAhead`] reads up to [`READ_SIZE`]
//! per call into a buffer on the stack, hands the reader what it asked for,
//! and keeps the rest in a heap buffer of its exact size, freed as soon as
//! it is handed out: an idle connection holds nothing extra. Writes go
//! straight through.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most one read system call takes: four full TLS records.
pub const READ_SIZE: usize = 64 * 1024;

/// A transport whose reads are made [`READ_SIZE`] at a time (see the
/// module documentation).
#[derive(Debug)]
pub struct ReadAhead<S> {
    inner: S,
    /// Read but not yet handed out (empty, without capacity, when drained).
    rest: Vec<u8>,
    /// How much of `rest` was handed out.
    pos: usize,
}

impl<S> ReadAhead<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        ReadAhead {
            inner,
            rest: Vec::new(),
            pos: 0,
        }
    }

    /// The wrapped transport (for its addresses).
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.rest.len() {
            let n = buf.remaining().min(this.rest.len() - this.pos);
            buf.put_slice(&this.rest[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.rest.len() {
                this.rest = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= READ_SIZE {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let mut stack = [MaybeUninit::<u8>::uninit(); READ_SIZE];
        let mut ahead = ReadBuf::uninit(&mut stack);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut ahead))?;
        let data = ahead.filled();
        let n = buf.remaining().min(data.len());
        buf.put_slice(&data[..n]);
        if n < data.len() {
            this.rest = data[n..].to_vec();
            this.pos = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn small_reads_get_every_byte_in_order_and_nothing_stays_behind() {
        let (mut writer, reader) = tokio::io::duplex(256 * 1024);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        writer.write_all(&data).await.unwrap();
        drop(writer);
        let mut reader = ReadAhead::new(reader);
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut largest_rest = 0;
        loop {
            let n = reader.read(&mut chunk).await.unwrap();
            largest_rest = largest_rest.max(reader.rest.capacity());
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, data);
        // One wide read served many small ones, and once drained nothing
        // is kept.
        assert!(largest_rest > 4096, "{largest_rest}");
        assert_eq!(reader.rest.capacity(), 0);
    }

    #[tokio::test]
    async fn writes_go_straight_through() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut a = ReadAhead::new(a);
        a.write_all(b"hello").await.unwrap();
        a.shutdown().await.unwrap();
        let mut got = String::new();
        b.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello");
    }
}
