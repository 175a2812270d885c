//! The real list-images binary, started on a free port over a SQLite database
//! seeded through the store API, called over HTTP like any client would.

use crate::support;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ETAG, ORIGIN};
use serde_json::Value;
use support::{Service, seed_classified, seed_pending, seed_rejected};

use catdog::domain::Category;
use catdog_testing::stats;

fn naive_utc_shape(s: &str) -> bool {
    // 2026-11-23T10:15:30.123456: no zone suffix, the old client appends Z.
    s.len() == 26 && chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.6f").is_ok()
}

#[tokio::test]
async fn original_images_contract_is_kept_exactly() {
    let service = Service::start(&[]).await;
    let cats = seed_classified(&service.store, Category::Cat, 3).await;
    let dogs = seed_classified(&service.store, Category::Dog, 3).await;
    seed_classified(&service.store, Category::Other, 2).await;

    let response = service.get("/images?limit=2").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "unexpected keys: {keys:?}");
    for key in [
        "cat_images",
        "dog_images",
        "total_images",
        "last_retrieve_at",
    ] {
        assert!(body.get(key).is_some(), "missing {key}");
    }
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let fields: Vec<&String> = item.as_object().unwrap().keys().collect();
                assert_eq!(fields.len(), 2, "items are just id and created_at: {item}");
                assert!(
                    naive_utc_shape(item["created_at"].as_str().unwrap()),
                    "{item}"
                );
                item["id"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    // Newest first: the last two seeded of each.
    let newest = |v: &[catdog::domain::ImageId]| vec![v[2].to_string(), v[1].to_string()];
    assert_eq!(ids(&body["cat_images"]), newest(&cats));
    assert_eq!(ids(&body["dog_images"]), newest(&dogs));
    assert_eq!(body["total_images"], 6, "others are not counted");
    assert!(naive_utc_shape(body["last_retrieve_at"].as_str().unwrap()));
}

#[tokio::test]
async fn bad_limits_are_422_naming_the_parameter() {
    let service = Service::start(&[]).await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=-1",
        "limit=1e3",
        "limit=99999999999999999999",
        "limit=%FF",
    ] {
        let response = service.get(&format!("/images?{query}")).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["detail"][0]["loc"],
            serde_json::json!(["query", "limit"]),
            "{query}"
        );
    }
}

#[tokio::test]
async fn default_limit_comes_from_images_limit() {
    let service = Service::start(&[("IMAGES_LIMIT", "3")]).await;
    seed_classified(&service.store, Category::Cat, 5).await;
    let body: Value = service.get("/images").await.json().await.unwrap();
    assert_eq!(body["cat_images"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn last_retrieve_at_is_never_null_before_the_first_ingestion() {
    let service = Service::start(&[]).await;
    let body: Value = service.get("/images").await.json().await.unwrap();
    assert!(naive_utc_shape(body["last_retrieve_at"].as_str().unwrap()));
    assert_eq!(body["cat_images"], serde_json::json!([]));
}

#[tokio::test]
async fn v1_pages_neither_repeat_nor_skip_while_pictures_arrive() {
    let service = Service::start(&[]).await;
    let first = seed_classified(&service.store, Category::Cat, 5).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/images?category=cat&limit=2&cursor={c}"),
            None => "/api/v1/images?category=cat&limit=2".to_owned(),
        };
        let page: Value = service.get(&path).await.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["category"], "cat");
            assert!(item["url"].as_str().unwrap().starts_with("/media/"));
            assert!(
                item["thumbnail_url"]
                    .as_str()
                    .unwrap()
                    .starts_with("/media/thumbs/")
            );
            assert!(item["created_at"].as_str().unwrap().ends_with('Z'));
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        pages += 1;
        if pages == 1 {
            // New pictures arrive while the visitor scrolls.
            seed_classified(&service.store, Category::Cat, 3).await;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging did not end");
    }
    let mut expected: Vec<String> = first.iter().rev().map(ToString::to_string).collect();
    expected.dedup();
    assert_eq!(
        seen, expected,
        "the listing as it was when paging began, once each"
    );
}

#[tokio::test]
async fn v1_refuses_tampered_cursors_and_bad_parameters_with_problems() {
    let service = Service::start(&[]).await;
    seed_classified(&service.store, Category::Dog, 3).await;
    let page: Value = service
        .get("/api/v1/images?category=dog&limit=1")
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for path in [
        format!("/api/v1/images?category=dog&cursor={tampered}"),
        format!("/api/v1/images?category=cat&cursor={cursor}"),
        "/api/v1/images?cursor=%27%3B%20DROP%20TABLE%20images%3B--".to_owned(),
        "/api/v1/images?category=fish".to_owned(),
        "/api/v1/images?limit=500".to_owned(),
    ] {
        let response = service.get(&path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
    // Nothing changed.
    let body: Value = service.get("/images").await.json().await.unwrap();
    assert_eq!(body["total_images"], 3);
}

#[tokio::test]
async fn v1_single_image_and_stats() {
    let service = Service::start(&[]).await;
    let cats = seed_classified(&service.store, Category::Cat, 2).await;
    seed_classified(&service.store, Category::Other, 1).await;

    let item: Value = service
        .get(&format!("/api/v1/images/{}", cats[0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(item["id"], cats[0].to_string());
    assert_eq!(item["category"], "cat");
    assert!(item["placeholder"].as_str().is_some());

    for missing in [
        "/api/v1/images/0192f1d6-7c3a-7b4e-9a51-2f1c0d9e8b7a",
        "/api/v1/images/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/images/not-an-id",
    ] {
        let response = service.get(missing).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
    }

    let stats: Value = service.get("/api/v1/stats").await.json().await.unwrap();
    assert_eq!(stats["total_images"], 2);
    assert_eq!(stats["by_category"]["other"], 1);
    assert_eq!(stats["by_status"]["classified"], 3);
    assert!(stats["next_ingest_at"].as_str().unwrap() > stats["last_ingest_at"].as_str().unwrap());
}

#[tokio::test]
async fn listings_revalidate_with_etags_until_the_gallery_changes() {
    let service = Service::start(&[]).await;
    seed_classified(&service.store, Category::Cat, 1).await;
    let first = service.get("/images?limit=5").await;
    let etag = first.headers()[ETAG].to_str().unwrap().to_owned();
    assert!(
        first.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );

    let again = service.revalidate("/images?limit=5", &etag).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    seed_classified(&service.store, Category::Dog, 1).await;
    let changed = service.revalidate("/images?limit=5", &etag).await;
    assert_eq!(
        changed.status(),
        StatusCode::OK,
        "a new picture must not be hidden by a 304"
    );
    assert_ne!(changed.headers()[ETAG].to_str().unwrap(), etag);
}

/// First pages are kept rendered by default, yet a picture recorded by
/// another process (the test's own connection to the database file) is in
/// the very next listing, and only then does revalidation stop answering 304.
#[tokio::test]
async fn kept_first_pages_never_hide_a_new_picture() {
    let service = Service::start(&[]).await;
    seed_classified(&service.store, Category::Cat, 2).await;
    let etag_of = |r: &reqwest::Response| r.headers()[ETAG].to_str().unwrap().to_owned();
    let newest = |list: &Value| list[0]["id"].as_str().unwrap().to_owned();
    for round in 0..5 {
        let original = service.get("/images?limit=5").await;
        let original_etag = etag_of(&original);
        let v1 = service.get("/api/v1/images?category=cat&limit=1").await;
        let v1_etag = etag_of(&v1);
        for (path, etag) in [
            ("/images?limit=5", &original_etag),
            ("/api/v1/images?category=cat&limit=1", &v1_etag),
        ] {
            let unchanged = service.revalidate(path, etag).await;
            assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED, "{path}");
        }

        let new = seed_classified(&service.store, Category::Cat, 1).await[0].to_string();
        let original: Value = service.get("/images?limit=5").await.json().await.unwrap();
        assert_eq!(newest(&original["cat_images"]), new, "round {round}");
        let v1: Value = service
            .get("/api/v1/images?category=cat&limit=1")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(newest(&v1["items"]), new, "round {round}");
        assert_eq!(v1["total"], 3 + round, "round {round}");
        for (path, etag) in [
            ("/images?limit=5", &original_etag),
            ("/api/v1/images?category=cat&limit=1", &v1_etag),
        ] {
            let changed = service.revalidate(path, etag).await;
            assert_eq!(changed.status(), StatusCode::OK, "{path} round {round}");
        }
    }
}

/// The stats count the whole table, so they are kept too: dropped with every
/// verdict the listings' change feed carries, and at most
/// `LISTING_CACHE_MS` (1 s by default) for the writes it does not (a new
/// pending picture on PostgreSQL).
#[tokio::test]
async fn kept_stats_follow_every_verdict_and_age_out_for_other_writes() {
    let service = Service::start(&[]).await;
    seed_classified(&service.store, Category::Cat, 2).await;
    let stats = || async { service.get("/api/v1/stats").await };
    let first = stats().await;
    let etag = first.headers()[ETAG].to_str().unwrap().to_owned();
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["by_category"]["cat"], 2);
    let unchanged = service.revalidate("/api/v1/stats", &etag).await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);

    for round in 1..=3 {
        seed_classified(&service.store, Category::Dog, 1).await;
        let now: Value = stats().await.json().await.unwrap();
        assert_eq!(now["by_category"]["dog"], round, "round {round}");
        assert_eq!(now["total_images"], 2 + round, "round {round}");
    }
    let changed = service.revalidate("/api/v1/stats", &etag).await;
    assert_eq!(changed.status(), StatusCode::OK);

    seed_pending(&service.store).await;
    let started = std::time::Instant::now();
    stats::wait_until(
        &service.client,
        &service.base,
        Duration::from_secs(5),
        |now| stats::count(now, "pending") == 1,
        || "a pending picture was not counted (LISTING_CACHE_MS is 1 s)".to_owned(),
    )
    .await;
    eprintln!("pending picture counted after {:?}", started.elapsed());
}

#[tokio::test]
async fn any_origin_may_read() {
    let service = Service::start(&[]).await;
    let response = service
        .client
        .get(service.url("/images"))
        .header(ORIGIN, "https://example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn health_readiness_and_openapi() {
    let service = Service::start(&[]).await;
    assert_eq!(service.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(service.get("/readyz").await.status(), StatusCode::OK);
    let doc: Value = service
        .get("/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    for path in [
        "/images",
        "/api/v1/images",
        "/api/v1/images/{id}",
        "/api/v1/stats",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
}

#[tokio::test]
async fn sigterm_finishes_and_exits_promptly() {
    let mut service = Service::start(&[]).await;
    let started = std::time::Instant::now();
    service.terminate();
    let status = service.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    for (name, value) in [("IMAGES_LIMIT", "1000"), ("LISTING_CACHE_MS", "60000")] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_list-images"))
            .env(name, value)
            .env("DATABASE_URL", "sqlite://:memory:")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{name}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.contains(name), "{name}={value}: stderr: {stderr}");
    }
}

/// The `n`th picture (1-based, newest first) of a listing, opened by a deep
/// link: the page around it says where it is and steps both ways.
#[tokio::test]
async fn a_page_around_a_picture_knows_its_position_and_steps_both_ways() {
    let service = Service::start(&[]).await;
    let cats = seed_classified(&service.store, Category::Cat, 60).await;
    seed_classified(&service.store, Category::Dog, 3).await;
    let newest_first: Vec<String> = cats.iter().rev().map(|id| id.to_string()).collect();
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };

    // The 50th cat, on a page of 16 (7 newer, itself, 8 older): beyond the
    // third page, with cats left after it for next_cursor.
    let fiftieth = &newest_first[49];
    let page: Value = service
        .get(&format!(
            "/api/v1/images?category=cat&limit=16&around={fiftieth}"
        ))
        .await
        .json()
        .await
        .unwrap();
    let shown = ids(&page);
    let at = shown.iter().position(|id| id == fiftieth).unwrap();
    assert_eq!(page["total"], 60);
    assert_eq!(page["position"].as_i64().unwrap() + at as i64, 50);
    assert_eq!(shown, newest_first[50 - 1 - at..50 - 1 - at + shown.len()]);

    // Newer: the page just before, ending right above this one.
    let prev = page["prev_cursor"].as_str().unwrap();
    let newer: Value = service
        .get(&format!(
            "/api/v1/images?category=cat&limit=16&cursor={prev}"
        ))
        .await
        .json()
        .await
        .unwrap();
    let first_shown = page["position"].as_i64().unwrap() as usize;
    assert_eq!(
        ids(&newer),
        newest_first[first_shown - 1 - 16..first_shown - 1]
    );
    assert_eq!(
        newer["position"].as_i64().unwrap() as usize,
        first_shown - 16
    );
    // Older: the rest, to the end.
    let next = page["next_cursor"].as_str().unwrap();
    let older: Value = service
        .get(&format!(
            "/api/v1/images?category=cat&limit=16&cursor={next}"
        ))
        .await
        .json()
        .await
        .unwrap();
    let after = first_shown - 1 + shown.len();
    assert_eq!(ids(&older), newest_first[after..]);
    assert_eq!(older["next_cursor"], Value::Null);

    // The first page says where it is too, and has nothing newer.
    let top: Value = service
        .get("/api/v1/images?category=cat&limit=24")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (top["position"].as_i64(), top["total"].as_i64()),
        (Some(1), Some(60))
    );
    assert_eq!(top["prev_cursor"], Value::Null);

    // A dog is not in the cats' listing; an unknown id is nowhere: both 404,
    // and a malformed one is a 400 naming the parameter.
    let dog = service.get("/api/v1/images?category=dog&limit=1").await;
    let dog: Value = dog.json().await.unwrap();
    let dog_id = dog["items"][0]["id"].as_str().unwrap();
    for missing in [
        dog_id.to_owned(),
        catdog::domain::ImageId::new().to_string(),
    ] {
        let response = service
            .get(&format!("/api/v1/images?category=cat&around={missing}"))
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let response = service.get("/api/v1/images?around=not-an-id").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = service
        .get(&format!("/api/v1/images?around={fiftieth}&cursor={next}"))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refused_pictures_are_listed_with_their_reason_only_when_asked() {
    let service = Service::start(&[]).await;
    let cat = seed_classified(&service.store, Category::Cat, 1).await[0];
    let other = seed_classified(&service.store, Category::Other, 1).await[0];
    let broken = seed_rejected(&service.store, "could not decode the picture").await;

    let all: Value = service.get("/api/v1/images").await.json().await.unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    assert_eq!(all["items"][0]["id"], cat.to_string());
    assert_eq!(all["items"][0]["reason"], Value::Null);

    let refused: Value = service
        .get("/api/v1/images?category=other")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refused["total"], 2);
    let items = refused["items"].as_array().unwrap();
    assert_eq!(items[0]["id"], broken.to_string());
    assert_eq!(items[0]["status"], "rejected");
    assert_eq!(items[0]["reason"], "could not decode the picture");
    assert_eq!(items[1]["id"], other.to_string());
    assert_eq!(items[1]["reason"], "not a cat or a dog");
}

#[tokio::test]
async fn items_carry_their_breed_and_reasons_and_breed_filters() {
    let service = Service::start(&[]).await;
    seed_classified(&service.store, Category::Cat, 2).await;
    seed_classified(&service.store, Category::Dog, 1).await;

    let page: Value = service
        .get("/api/v1/images?category=cat")
        .await
        .json()
        .await
        .unwrap();
    let item = &page["items"][0];
    assert_eq!(item["breed"], "tabby");
    assert!((item["breed_probability"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(item["why"][0]["label"], "tabby");
    assert_eq!(item["relabelled"], false);

    let beagles: Value = service
        .get("/api/v1/images?breed=BEAGLE")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(beagles["total"], 1);
    assert_eq!(beagles["items"][0]["category"], "dog");
    let none: Value = service
        .get("/api/v1/images?category=cat&breed=beagle")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    let too_long = "x".repeat(65);
    let response = service
        .get(&format!("/api/v1/images?breed={too_long}"))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
