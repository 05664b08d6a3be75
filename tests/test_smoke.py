def test_devshop_serves_its_control_api(devshop):
    shop = devshop.client.shop_create("smoke.myshopify.com")
    assert shop["myshopify_domain"] == "smoke.myshopify.com"
    assert devshop.client.shop_get("smoke.myshopify.com")["id"] == shop["id"]


def test_healthz_answers(client, db, redis_conn):
    response = client.get("/healthz")
    assert response.status_code == 200
