//! Benchmarks of broadcast selection in the room index of one namespace.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sockio_core::socketio::rooms::{BroadcastTarget, RoomIndex};

/// `n` members (0..n), each in its own sid room `s{i}`.
fn with_sid_rooms(n: u32) -> RoomIndex<u32> {
    let mut idx = RoomIndex::new();
    for i in 0..n {
        idx.join(&i, &format!("s{i}"));
    }
    idx
}

fn select(c: &mut Criterion) {
    let mut group = c.benchmark_group("rooms/select");

    // Broadcast to all of 10,000 members.
    let all = with_sid_rooms(10_000);
    let target = BroadcastTarget::all();
    let mut buf = Vec::new();
    group.bench_function("all_10000", |b| {
        b.iter(|| {
            buf.clear();
            all.select_into(black_box(&target), &mut buf);
            black_box(buf.len())
        })
    });
    group.bench_function("all_10000_alloc", |b| {
        b.iter(|| black_box(all.select(black_box(&target))))
    });

    // Broadcast to one room of 10,000 members.
    let mut one = with_sid_rooms(10_000);
    for i in 0..10_000 {
        one.join(&i, "lobby");
    }
    let target = BroadcastTarget::room("lobby");
    group.bench_function("one_room_10000", |b| {
        b.iter(|| {
            buf.clear();
            one.select_into(black_box(&target), &mut buf);
            black_box(buf.len())
        })
    });

    // Union of 10 rooms of 1,000 members each, overlapping: room r holds
    // members 500*r .. 500*r + 1000, so each member but the first and last
    // 500 is in two rooms (5,500 distinct recipients).
    let mut union = with_sid_rooms(5_500);
    let names: Vec<String> = (0..10).map(|r| format!("room{r}")).collect();
    for (r, name) in names.iter().enumerate() {
        let start = 500 * r as u32;
        for i in start..start + 1_000 {
            union.join(&i, name);
        }
    }
    let target = BroadcastTarget::rooms(&names);
    assert_eq!(union.select(&target).len(), 5_500);
    group.bench_function("union_10x1000_overlapping", |b| {
        b.iter(|| {
            buf.clear();
            union.select_into(black_box(&target), &mut buf);
            black_box(buf.len())
        })
    });

    // The sender skipped: to all of 10,000, and to one room of 10,000.
    for (name, idx, base) in [
        ("all_10000", &all, BroadcastTarget::all()),
        ("one_room_10000", &one, BroadcastTarget::room("lobby")),
    ] {
        let target = base.skip(5_000);
        group.bench_function(BenchmarkId::new("skip_1", name), |b| {
            b.iter(|| {
                buf.clear();
                idx.select_into(black_box(&target), &mut buf);
                black_box(buf.len())
            })
        });
    }

    // 100 skipped members: to all of 10,000, and to one room of 10,000.
    let skip: Vec<u32> = (0..10_000).step_by(100).collect();
    for (name, idx, base) in [
        ("all_10000", &all, BroadcastTarget::all()),
        ("one_room_10000", &one, BroadcastTarget::room("lobby")),
    ] {
        let mut target = base;
        target.skip = skip.clone();
        assert_eq!(idx.select(&target).len(), 9_900);
        group.bench_function(BenchmarkId::new("skip_100", name), |b| {
            b.iter(|| {
                buf.clear();
                idx.select_into(black_box(&target), &mut buf);
                black_box(buf.len())
            })
        });
    }
    let mut target = BroadcastTarget::rooms(&names);
    target.skip = skip.iter().map(|i| i % 5_500).collect();
    group.bench_function(
        BenchmarkId::new("skip_100", "union_10x1000_overlapping"),
        |b| {
            b.iter(|| {
                buf.clear();
                union.select_into(black_box(&target), &mut buf);
                black_box(buf.len())
            })
        },
    );

    // Everyone except one room of 5,000 and the sender.
    let mut half = with_sid_rooms(10_000);
    for i in (0..10_000).step_by(2) {
        half.join(&i, "even");
    }
    let target = BroadcastTarget::all().except_room("even").skip(1);
    // A broadcast to 10,000 rooms by name (an application passing a client's rooms on).
    let mut many = RoomIndex::new();
    let many_names: Vec<String> = (0..10_000).map(|i| format!("r{i}")).collect();
    for (i, name) in many_names.iter().enumerate() {
        many.join(&(i as u32), name);
    }
    let to_many = BroadcastTarget::rooms(many_names.iter().map(String::as_str));
    group.bench_function("union_of_10000_rooms", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            many.select_into(&to_many, &mut out);
            black_box(out.len())
        })
    });
    group.bench_function("all_10000_except_room_5000", |b| {
        b.iter(|| {
            buf.clear();
            half.select_into(black_box(&target), &mut buf);
            black_box(buf.len())
        })
    });

    group.finish();
}

fn membership(c: &mut Criterion) {
    let mut group = c.benchmark_group("rooms/membership");
    // Connect then disconnect 10,000 sockets, each in its sid room and a shared room.
    let names: Vec<String> = (0..10_000).map(|i| format!("s{i}")).collect();
    group.bench_function("join_remove_10000", |b| {
        b.iter(|| {
            let mut idx = RoomIndex::new();
            for (i, name) in names.iter().enumerate() {
                idx.join(&(i as u32), name);
                idx.join(&(i as u32), "lobby");
            }
            for i in 0..10_000u32 {
                black_box(idx.remove_member(&i));
            }
            idx
        })
    });
    // Two sockets of one client share 20,000 rooms (client-chosen names of 64 bytes with a
    // common prefix) and one disconnects: every room moves the other into its place.
    let shared: Vec<String> = (0..20_000).map(|i| format!("{:0>64}", i)).collect();
    let mut sharing = RoomIndex::new();
    for name in &shared {
        sharing.join(&1u32, name);
        sharing.join(&2u32, name);
    }
    group.bench_function("remove_member_sharing_20000_rooms", |b| {
        b.iter_batched(
            || sharing.clone(),
            |mut idx| black_box(idx.remove_member(&1)),
            criterion::BatchSize::LargeInput,
        )
    });
    // One socket leaves 20,000 rooms one by one, the last joined first.
    group.bench_function("leave_20000_rooms_in_reverse", |b| {
        b.iter_batched(
            || sharing.clone(),
            |mut idx| {
                for name in shared.iter().rev() {
                    black_box(idx.leave(&1, name));
                }
                idx
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, select, membership);
criterion_main!(benches);
