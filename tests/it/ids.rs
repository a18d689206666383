//! Delius ids from the PostgreSQL sequences in blocks (`PgIds`): one round trip per block,
//! unique across allocators (processes), increasing within one, and a failure is an error.

use std::collections::BTreeSet;

use aggregates::{IdAllocator, IdSequence};
use delius_bridge::ids::{PgIds, BLOCK};
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
    for _ in 1..BLOCK {
        mine.push(first.next_id(IdSequence::Contact).await.unwrap());
    }
    assert_eq!(last_value(&pool).await, a + BLOCK - 1, "served from memory");
    assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");

    // A second allocator (another process) never sees the first one's block.
    let second = PgIds::new(pool.clone());
    let b = second.next_id(IdSequence::Contact).await.unwrap();
    assert_eq!(b, a + BLOCK);
    // The first starts its next block after it.
    let c = first.next_id(IdSequence::Contact).await.unwrap();
    assert_eq!(c, a + 2 * BLOCK);

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
    assert_eq!(all.len(), BLOCK as usize + 2 + 200);
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
