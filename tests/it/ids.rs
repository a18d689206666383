//! Delius ids from the PostgreSQL sequences in blocks (`PgIds`): one round trip per block,
//! the next block fetched in the background once half of one is used, unique across
//! allocators (processes), increasing within one, and a failure is an error.

use std::collections::BTreeSet;

use aggregates::{IdAllocator, IdSequence};
use std::time::{Duration, Instant};

use delius_bridge::ids::{PgIds, BLOCK, REFILL_BELOW};
use sqlx::PgPool;

async fn last_value(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT last_value FROM delius.contact_id_seq")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn ids_come_in_blocks_unique_across_allocators(pool: PgPool) {
    let first = PgIds::new(pool.clone());
    let a = first.next_id(IdSequence::Contact).await.unwrap();
    // One round trip took a whole block.
    assert_eq!(last_value(&pool).await, a + BLOCK - 1);
    let mut mine = vec![a];
    // Until fewer than REFILL_BELOW are left, from memory only.
    let half = BLOCK as usize - REFILL_BELOW;
    while mine.len() < half {
        mine.push(first.next_id(IdSequence::Contact).await.unwrap());
    }
    assert_eq!(last_value(&pool).await, a + BLOCK - 1, "served from memory");
    // The next one leaves fewer: the next block is fetched in the background.
    mine.push(first.next_id(IdSequence::Contact).await.unwrap());
    let started = Instant::now();
    // (Held in memory, not only taken from the sequence: the fetch stores it after.)
    while first.held(IdSequence::Contact).unwrap() < BLOCK as usize {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no block fetched ahead"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(last_value(&pool).await, a + 2 * BLOCK - 1);
    // The rest of the first block and the one fetched ahead: from memory, in order.
    while mine.len() < 2 * BLOCK as usize - REFILL_BELOW {
        mine.push(first.next_id(IdSequence::Contact).await.unwrap());
    }
    assert_eq!(
        last_value(&pool).await,
        a + 2 * BLOCK - 1,
        "one block ahead only"
    );
    assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
    assert_eq!(
        mine.last(),
        Some(&(a + 2 * BLOCK - REFILL_BELOW as i64 - 1))
    );

    // A second allocator (another process) never sees the first one's blocks.
    let second = PgIds::new(pool.clone());
    let b = second.next_id(IdSequence::Contact).await.unwrap();
    assert_eq!(b, a + 2 * BLOCK);
    // The first goes on with what it holds.
    let c = first.next_id(IdSequence::Contact).await.unwrap();
    assert_eq!(c, a + 2 * BLOCK - REFILL_BELOW as i64);

    // Many tasks on two allocators at once: every id unique.
    let mut tasks = Vec::new();
    for n in 0..200 {
        let ids = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            ids.next_id(IdSequence::Contact).await.unwrap()
        }));
    }
    let mut all = BTreeSet::from_iter(mine.iter().copied().chain([b, c]));
    for task in tasks {
        assert!(
            all.insert(task.await.unwrap()),
            "an id was handed out twice"
        );
    }
    assert_eq!(all.len(), mine.len() + 2 + 200);
    // Other sequences have their own blocks.
    let release = first.next_id(IdSequence::Release).await.unwrap();
    let release_last: i64 = sqlx::query_scalar("SELECT last_value FROM delius.release_id_seq")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(release_last, release + BLOCK - 1);
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_missing_sequence_is_an_error(pool: PgPool) {
    sqlx::query("DROP SEQUENCE delius.recall_id_seq CASCADE")
        .execute(&pool)
        .await
        .unwrap();
    let ids = PgIds::new(pool);
    let error = ids.next_id(IdSequence::Recall).await.unwrap_err();
    assert!(error.0.contains("recall_id_seq"), "{error:?}");
}

/// A block that cannot be fetched ahead is no error while ids are left; the caller that
/// finds the sequence empty fetches for itself and gets the error.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_failed_fetch_ahead_leaves_the_ids_in_hand(pool: PgPool) {
    let ids = PgIds::new(pool.clone());
    let first = ids.next_id(IdSequence::Recall).await.unwrap();
    sqlx::query("DROP SEQUENCE delius.recall_id_seq CASCADE")
        .execute(&pool)
        .await
        .unwrap();
    for n in 1..BLOCK {
        let id = ids.next_id(IdSequence::Recall).await.unwrap();
        assert_eq!(id, first + n, "from the block in hand");
    }
    let error = ids.next_id(IdSequence::Recall).await.unwrap_err();
    assert!(error.0.contains("recall_id_seq"), "{error:?}");
}
