//! A small SMTP receiver: the server side of RFC 5321 as far as a mail client without
//! TLS or authentication uses it (EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET,
//! NOOP, QUIT). One thread per connection, as test traffic needs no more. Ours rather
//! than a crate's: the one we used brought a second TLS stack into every build, for a
//! sink that never speaks TLS.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// Where received messages go.
pub trait Mailbox: Send + Sync + 'static {
    /// Whether a message is accepted now; when not, the client is told to try again
    /// later (451), as a busy server would.
    fn accepting(&self) -> bool {
        true
    }

    /// A message arrived: its recipients and its content, dot-unstuffed, lines ending in
    /// CRLF, without the final `.`.
    fn deliver(&self, to: Vec<String>, data: Vec<u8>);
}

/// Serves SMTP on `listener` as `name`, on a thread of its own, until the process ends.
pub fn serve(listener: TcpListener, name: &str, mailbox: Arc<dyn Mailbox>) {
    let name = name.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mailbox = mailbox.clone();
            let name = name.clone();
            std::thread::spawn(move || {
                // A client that hangs up mid-session is its own business.
                let _ = session(stream, &name, mailbox.as_ref());
            });
        }
    });
}

/// The longest line accepted (RFC 5321 allows 1,000 octets with CRLF; some clients go
/// over inside DATA, so be generous and only guard against a runaway client).
const MAX_LINE: usize = 64 * 1024;

fn session(stream: TcpStream, name: &str, mailbox: &dyn Mailbox) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    write!(out, "220 {name} ESMTP ready\r\n")?;
    let mut to: Vec<String> = Vec::new();
    let mut sender = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        if read_line(&mut reader, &mut line)? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let command = text.trim_end();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => format!("250-{name}\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"),
            "HELO" => format!("250 {name}\r\n"),
            "MAIL" if !mailbox.accepting() => "451 4.3.0 Try again later\r\n".to_owned(),
            "MAIL" => {
                sender = true;
                to.clear();
                "250 2.1.0 OK\r\n".to_owned()
            }
            "RCPT" if !sender => "503 5.5.1 MAIL first\r\n".to_owned(),
            "RCPT" => match address(command) {
                Some(address) => {
                    to.push(address);
                    "250 2.1.5 OK\r\n".to_owned()
                }
                None => "501 5.1.3 Bad recipient address syntax\r\n".to_owned(),
            },
            "DATA" if to.is_empty() => "503 5.5.1 RCPT first\r\n".to_owned(),
            "DATA" => {
                write!(out, "354 End data with <CR><LF>.<CR><LF>\r\n")?;
                let data = read_data(&mut reader)?;
                mailbox.deliver(std::mem::take(&mut to), data);
                sender = false;
                "250 2.0.0 OK: queued\r\n".to_owned()
            }
            "RSET" => {
                sender = false;
                to.clear();
                "250 2.0.0 OK\r\n".to_owned()
            }
            "NOOP" => "250 2.0.0 OK\r\n".to_owned(),
            "QUIT" => {
                write!(out, "221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            _ => "502 5.5.2 Command not recognized\r\n".to_owned(),
        };
        out.write_all(reply.as_bytes())?;
    }
}

/// One line, CRLF included; 0 at the end of the stream.
fn read_line<R: BufRead>(reader: &mut R, line: &mut Vec<u8>) -> std::io::Result<usize> {
    let read = std::io::Read::take(reader, MAX_LINE as u64).read_until(b'\n', line)?;
    if read == MAX_LINE && !line.ends_with(b"\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line too long",
        ));
    }
    Ok(read)
}

/// The message after DATA, up to the line holding a single `.`, with the leading dot of
/// every other line that starts with one removed (RFC 5321, 4.5.2).
fn read_data<R: BufRead>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if read_line(reader, &mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let unstuffed = if line.starts_with(b".") {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(unstuffed);
    }
}

/// The address of `RCPT TO:<address>`.
fn address(command: &str) -> Option<String> {
    let start = command.find('<')? + 1;
    let end = start + command[start..].find('>')?;
    Some(command[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_unstuffed_up_to_the_lone_dot() {
        let mut input: &[u8] = b"Subject: x\r\n\r\n..leading dot\r\nplain\r\n.\r\nQUIT\r\n";
        let data = read_data(&mut input).unwrap();
        assert_eq!(data, b"Subject: x\r\n\r\n.leading dot\r\nplain\r\n");
        assert_eq!(input, b"QUIT\r\n");
    }

    #[test]
    fn recipients_are_read_between_angle_brackets() {
        assert_eq!(
            address("RCPT TO:<ana@example.com> NOTIFY=NEVER").as_deref(),
            Some("ana@example.com")
        );
        assert_eq!(address("RCPT TO:ana@example.com"), None);
    }
}
