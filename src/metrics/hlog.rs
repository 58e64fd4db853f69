//! HdrHistogram interval logs (`.hlog`): one histogram per interval of a run, in the
//! text format of the Java `HistogramLogWriter`, which HistogramLogAnalyzer and
//! `HistogramLogProcessor` read. Values, including the `Interval_Max` column, are
//! microseconds (readers decode the histogram itself; the column is informative).

use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

/// Writes an interval log to `W`, one histogram line per call.
pub struct IntervalLog<W: Write> {
    out: W,
    serializer: V2DeflateSerializer,
}

impl<W: Write> std::fmt::Debug for IntervalLog<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntervalLog")
    }
}

impl<W: Write> IntervalLog<W> {
    /// Starts a log whose interval timestamps are seconds since `start`.
    pub fn new(mut out: W, start: SystemTime) -> io::Result<Self> {
        let mut serializer = V2DeflateSerializer::new();
        {
            let mut b = IntervalLogWriterBuilder::new();
            // The Java reader uses the format version to pick its parser.
            b.add_comment("[Logged with gateprobe]")
                .add_comment("[Histogram log format version 1.3]")
                .with_start_time(start)
                .with_base_time(start);
            b.begin_log_with(&mut out, &mut serializer)?;
        }
        writeln!(
            out,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(IntervalLog { out, serializer })
    }

    /// Appends the histogram of one interval starting `offset` after the log's start
    /// and lasting `length`. `tag` names the series (`latency`, `service`, ...); tags
    /// must not contain `,`, `\r`, `\n` or spaces.
    pub fn write(
        &mut self,
        tag: Option<&str>,
        offset: Duration,
        length: Duration,
        h: &Histogram<u64>,
    ) -> io::Result<()> {
        let tag = match tag {
            Some(t) => Some(Tag::new(t).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "invalid tag"))?),
            None => None,
        };
        // A builder with no headers writes nothing; it just lends us a line writer
        // that shares our serializer's buffers.
        let mut w = IntervalLogWriterBuilder::new().begin_log_with(&mut self.out, &mut self.serializer)?;
        w.write_histogram(h, offset, length, tag)
            .map_err(|e| io::Error::other(e.to_string()))
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
