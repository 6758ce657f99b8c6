//! Socket.IO packet encoding and decoding throughput.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use sockio_core::socketio::decoder::{Decoder, DecoderLimits, decode_packet};
use sockio_core::socketio::packet::{Packet, placeholder};

fn bench_case(c: &mut Criterion, name: &str, packet: &Packet) {
    let encoded = packet.encode();
    let bytes = encoded.text.len() + encoded.attachments.iter().map(Bytes::len).sum::<usize>();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("encode", |b| b.iter(|| black_box(packet).encode()));
    group.bench_function("decode", |b| {
        let mut decoder = Decoder::new(DecoderLimits::default());
        b.iter(|| {
            let mut result = decoder
                .decode_text(black_box(&encoded.text))
                .expect("valid packet");
            for attachment in &encoded.attachments {
                result = decoder
                    .decode_binary(black_box(attachment.clone()))
                    .expect("valid attachment");
            }
            result.expect("complete packet")
        })
    });
    if encoded.attachments.is_empty() {
        group.bench_function("decode_packet", |b| {
            b.iter(|| decode_packet(black_box(&encoded.text)).expect("valid packet"))
        });
    }
    group.finish();
}

fn codec(c: &mut Criterion) {
    let small = Packet::event(
        "/",
        "message",
        vec![json!({"text": "hello", "n": 1})],
        vec![],
        None,
    );
    bench_case(c, "small_event", &small);

    let text_1k = Packet::event("/", "message", vec![json!("x".repeat(1024))], vec![], None);
    bench_case(c, "string_event_1k", &text_1k);

    let binary_1k = Packet::event(
        "/",
        "upload",
        vec![placeholder(0)],
        vec![Bytes::from(vec![0xab; 1024])],
        None,
    );
    bench_case(c, "binary_event_1k", &binary_1k);
}

criterion_group!(benches, codec);
criterion_main!(benches);
