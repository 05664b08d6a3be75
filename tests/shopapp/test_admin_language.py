"""The embedded admin speaks the staff member's admin language: Shopify adds ``locale`` to the
app's URL ("fr", "pt-BR"); the app's pages follow it in English, Spanish, French and German,
every in-app link and filter form passes it on, and anything else reads in English."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from notifications.models import MessageTemplate, NotificationSettings, Sequence
from returns.models import ReturnBlocklistEntry, ReturnPolicy, ReturnRequest
from tests.shopapp.test_embedded import HOST, token_for
from tests.shopapp.test_polaris_look import admin_pages_store

pytestmark = pytest.mark.django_db


def page(client, shop, path: str, locale: str | None, **params: str):
    query = {"shop": shop.myshopify_domain, "host": HOST, "id_token": token_for(shop), **params}
    if locale is not None:
        query["locale"] = locale
    response = client.get(path, query)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("locale", "lang", "words"),
    [
        ("fr", "fr", ["Commandes", "Historique", "Commande passée", "Copier le lien de suivi"]),
        ("es-ES", "es", ["Pedidos", "Cronología", "Pedido realizado", "Añadir nota"]),
        ("de", "de", ["Bestellungen", "Verlauf", "Bestellung aufgegeben", "Gemeldete Probleme"]),
        ("en", "en", ["Orders", "Timeline", "Order placed", "Copy tracking link"]),
    ],
)
def test_the_order_page_reads_in_the_admins_language(client, locale, lang, words):
    # given
    shop, pages = admin_pages_store()
    # when
    html = page(client, shop, pages["order"], locale)
    # then
    assert f'<html lang="{lang}">' in html
    for word in words:
        assert word in html, word
    # and the sidebar, tabs and every in-app link keep the language for the next page
    links = re.findall(r'href="(/app/[^"]*)"', html)
    assert links
    expected = f"locale={lang}" if lang != "en" or locale == "en" else ""
    assert all(expected in link for link in links), links


def test_a_language_the_app_does_not_speak_reads_in_english_and_is_not_passed_on(client):
    shop, pages = admin_pages_store()
    for locale in ("pt-BR", "zh-CN", "", 'fr"><script>alert(1)</script>', "x" * 5000):
        html = page(client, shop, pages["order"], locale)
        assert '<html lang="en">' in html
        assert "Timeline" in html
        assert "locale=" not in html
        assert "<script>alert" not in html


def test_every_admin_page_renders_in_every_language(client):
    shop, pages = admin_pages_store()
    for locale in ("en", "es", "fr", "de"):
        for name, path in pages.items():
            html = page(client, shop, path, locale)
            assert f'<html lang="{locale}">' in html, (locale, name)


def test_the_filter_forms_keep_the_language(client):
    shop, pages = admin_pages_store()
    for name in ("orders", "returns", "insights", "messages"):
        html = page(client, shop, pages[name], "de")
        assert '<input type="hidden" name="locale" value="de">' in html, name


def test_an_action_redirects_to_a_page_in_the_same_language(client):
    # given
    shop, pages = admin_pages_store()
    # when staff add a note from the order's page read in French
    response = client.post(
        f"{pages['order']}/notes?shop={shop.myshopify_domain}&host={HOST}&locale=fr",
        {"text": "Rappelé la cliente.", "submission_id": "note-fr-1"},
        HTTP_AUTHORIZATION=f"Bearer {token_for(shop)}",
    )
    # then the page it lands on is French too, and says so
    assert response.status_code == 303
    assert "locale=fr" in response["Location"]
    location = urlsplit(response["Location"])
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    html = client.get(location.path, {**query, "id_token": token_for(shop)})
    assert html["Content-Language"] == "fr"
    assert "Note ajoutée." in html.content.decode()


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        (
            "fr",
            ["File d'attente", "Approuver la sélection", "Demandé", "Ancienneté", "1 retour<"],
        ),
        ("es", ["Cola", "Aprobar las marcadas", "Reembolso", "1 devolución<", "Pendiente"]),
        (
            "de",
            ["Warteschlange", "Markierte genehmigen", "Erstattung", "1 Rücksendung<", "Ausstehend"],
        ),
        ("en", ["Queue", "Approve ticked", "Requested", "Refund", "1 return<", "Pending"]),
    ],
)
def test_the_returns_queue_reads_in_the_admins_language(client, locale, words):
    shop, pages = admin_pages_store()
    html = unescape(page(client, shop, pages["returns"], locale))
    for word in words:
        assert word in html, word


def test_a_bulk_notice_counts_in_the_admins_language(client):
    shop, pages = admin_pages_store()
    notice = {"notice": "bulk", "action": "approve", "done": "2", "failed": "1"}
    html = unescape(page(client, shop, pages["returns"], "fr", **notice))
    assert "2 retours approuvés. 1 n'ont pas pu l'être : ouvrez-les pour voir pourquoi." in html


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("fr", ["Paramètres des notifications", "Heures de silence", "Nom de l'expéditeur"]),
        ("es", ["Ajustes de notificaciones", "Horas de silencio", "Nombre del remitente"]),
        ("de", ["Benachrichtigungseinstellungen", "Ruhezeiten", "Absendername"]),
        ("en", ["Notification settings", "Quiet hours", "Sender name"]),
    ],
)
def test_the_notification_settings_read_in_the_admins_language(client, locale, words):
    shop, pages = admin_pages_store()
    html = unescape(page(client, shop, pages["notification-settings"], locale))
    for word in words:
        assert word in html, word


def test_a_refused_setting_says_why_in_the_admins_language_and_saves_nothing(client):
    shop, pages = admin_pages_store()
    before = list(NotificationSettings.objects.filter(shop=shop).values())
    response = client.post(
        f"{pages['notification-settings']}?shop={shop.myshopify_domain}&locale=de",
        {
            "email_quiet_start": "25:00",
            "email_quiet_end": "07:00",
            "sms_quiet_start": "21:00",
            "sms_quiet_end": "08:00",
            "combine_shipments_minutes": "15",
            "is_sms_enabled": "on",
        },
        HTTP_AUTHORIZATION=f"Bearer {token_for(shop)}",
    )
    assert response.status_code == 400
    html = unescape(response.content.decode())
    assert "Verwenden Sie HH:MM, z. B. 21:00." in html
    assert (
        "Um SMS zu senden, geben Sie die Account SID, die Absendernummer, den Auth-Token ein."
        in html
    )
    assert list(NotificationSettings.objects.filter(shop=shop).values()) == before


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        (
            "fr",
            [
                "Statistiques",
                "Délai de livraison par transporteur",
                "30 derniers jours",
                "90e centile (jours)",
                "Graphique en barres ; le tableau ci-dessous donne les mêmes chiffres.",
            ],
        ),
        (
            "es",
            [
                "Estadísticas",
                "Tiempo de entrega por transportista",
                "Últimos 30 días",
                "Percentil 90 (días)",
                "Gráfico de barras; la tabla de abajo da las mismas cifras.",
            ],
        ),
        (
            "de",
            [
                "Statistiken",
                "Lieferzeit nach Versanddienstleister",
                "Letzte 30 Tage",
                "90. Perzentil (Tage)",
                "Balkendiagramm; die Tabelle darunter enthält dieselben Zahlen.",
            ],
        ),
        ("en", ["Insights", "Delivery time by carrier", "Last 30 days"]),
    ],
)
def test_the_insights_read_in_the_admins_language(client, locale, words):
    shop, pages = admin_pages_store()
    html = unescape(page(client, shop, pages["insights"], locale))
    for word in words:
        assert word in html, word


def test_a_csv_is_headed_in_the_admins_language(client):
    shop, _ = admin_pages_store()
    response = client.get(
        "/app/insights/problems.csv",
        {"shop": shop.myshopify_domain, "id_token": token_for(shop), "locale": "fr"},
    )
    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    assert lines == [
        "Problème,Signalés par les clients,Enregistrés par le personnel",
        "Non reçu,0,0",
        "Arrivé endommagé,0,0",
        "Mauvais article,0,0",
    ]


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        (
            "fr",
            [
                "Image de marque",
                "Votre style",
                "Contact du support",
                "Aperçu",
                "Système (celle du client)",
            ],
        ),
        (
            "es",
            [
                "Marca",
                "Tu estilo",
                "Contacto de asistencia",
                "Vista previa",
                "Sistema (la del cliente)",
            ],
        ),
        (
            "de",
            [
                "Branding",
                "Ihr Erscheinungsbild",
                "Support-Kontakt",
                "Vorschau",
                "Festbreitenschrift",
            ],
        ),
        ("en", ["Branding", "Your look", "Support contact", "Preview"]),
    ],
)
def test_the_branding_page_reads_in_the_admins_language(client, locale, words):
    shop, pages = admin_pages_store()
    html = unescape(page(client, shop, pages["branding"], locale))
    for word in words:
        assert word in html, word


@pytest.mark.parametrize(
    ("locale", "count", "words"),
    [
        ("fr", "1 commande", ["Rechercher", "Toutes les commandes", "Paiement :", "Client"]),
        ("es", "1 pedido", ["Buscar", "Todos los pedidos", "Cliente", "Estado"]),
        ("de", "1 Bestellung", ["Suchen", "Alle Bestellungen", "Kunde", "Versand"]),
        ("en", "1 order", ["Search", "All orders", "Customer", "Shipping"]),
    ],
)
def test_the_order_list_reads_in_the_admins_language_and_announces_its_results(
    client, locale, count, words
):
    shop, pages = admin_pages_store()
    html = unescape(page(client, shop, pages["orders"], locale))
    # The count of what the list shows is a live region: a screen reader hears a new search's.
    status = re.search(
        r'<p class="subdued" role="status" aria-live="polite"[^>]*>([^<]*)</p>', html
    )
    assert status is not None
    assert status.group(1) == count
    for word in words:
        assert word in html, word


def test_a_search_says_how_many_orders_match_and_escapes_what_was_typed(client):
    shop, pages = admin_pages_store()
    html = page(client, shop, pages["orders"], "fr", q="<b>nope</b>")
    assert "0 commande correspond" in html
    assert "Aucune commande ne correspond à « &lt;b&gt;nope&lt;/b&gt; »." in html
    assert "<b>nope</b>" not in html


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("fr", ["Demandes de données des clients", "Aucune demande de données.", "Fuseau horaire"]),
        (
            "es",
            ["Solicitudes de datos de clientes", "No hay solicitudes de datos.", "Zona horaria"],
        ),
        ("de", ["Datenanfragen von Kunden", "Keine Datenanfragen.", "Zeitzone"]),
    ],
)
def test_the_privacy_and_settings_pages_read_in_the_admins_language(client, locale, words):
    shop, pages = admin_pages_store()
    html = unescape(page(client, shop, pages["privacy"], locale))
    html += unescape(page(client, shop, pages["settings"], locale))
    for word in words:
        assert word in html, word


def post_page(client, shop, path: str, locale: str, data: dict):
    return client.post(
        f"{path}?shop={shop.myshopify_domain}&host={HOST}&locale={locale}",
        data,
        HTTP_AUTHORIZATION=f"Bearer {token_for(shop)}",
    )


POLICY_ENGLISH = [
    "When shoppers can return",
    "Return window (days)",
    "Counted from delivery.",
    "Reasons shoppers can choose",
    "Damaged or defective",
    "Never approve automatically for",
    "Flag customers who return this share of orders",
    ">Save<",
]


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        (
            "fr",
            [
                "<title>Politique de retour",
                "Délai de retour (jours)",
                "Motifs que les clients peuvent choisir",
                "Endommagé ou défectueux",
                "Approbation automatique",
                ">Enregistrer<",
            ],
        ),
        (
            "es",
            [
                "<title>Política de devoluciones",
                "Plazo de devolución (días)",
                "Motivos que pueden elegir los clientes",
                "Dañado o defectuoso",
                "Aprobación automática",
                ">Guardar<",
            ],
        ),
        (
            "de",
            [
                "<title>Rückgaberichtlinie",
                "Rückgabefrist (Tage)",
                "Gründe, die Kunden wählen können",
                "Beschädigt oder defekt",
                "Automatische Genehmigung",
                ">Sichern<",
            ],
        ),
    ],
)
def test_the_return_policy_reads_in_the_admins_language(client, locale, words):
    shop, pages = admin_pages_store()
    html = unescape(page(client, shop, pages["policy"], locale))
    for word in words:
        assert word in html, word
    for english in POLICY_ENGLISH:
        assert english not in html, english


def test_a_refused_policy_says_why_in_the_admins_language_and_saves_nothing(client):
    shop, pages = admin_pages_store()
    page(client, shop, pages["policy"], "fr")
    before = list(ReturnPolicy.objects.filter(shop=shop).values())
    assert before
    response = post_page(
        client,
        shop,
        pages["policy"],
        "fr",
        {
            "window_days": "30",
            "transit_allowance_days": "7",
            "restocking_fee_percent": "150",
            "return_shipping_fee": "0",
            "auto_approve_max_value": "100",
            "high_return_ratio": "0.5",
            "reasons": ["DEFECTIVE"],
            "reasons_by_product_type": "Beauty DEFECTIVE",
        },
    )
    assert response.status_code == 400
    html = unescape(response.content.decode())
    assert "Vérifiez les champs mis en évidence." in html
    assert "Entre 0 et 100." in html
    assert "Ligne 1 : écrivez « Type de produit: MOTIF, MOTIF »" in html
    assert "Autorisez au moins une façon de régler un retour." in html
    assert "Check the highlighted fields." not in html
    assert list(ReturnPolicy.objects.filter(shop=shop).values()) == before


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("fr", ["Liste de blocage des retours", "Personne n'est bloqué.", ">Ajouter<"]),
        ("es", ["Lista de bloqueo de devoluciones", "No hay nadie bloqueado.", ">Añadir<"]),
        ("de", ["Sperrliste für Rücksendungen", "Niemand ist gesperrt.", ">Hinzufügen<"]),
    ],
)
def test_the_blocklist_reads_in_the_admins_language(client, locale, words):
    shop, pages = admin_pages_store()
    html = unescape(page(client, shop, pages["blocklist"], locale))
    for word in words:
        assert word in html, word
    for english in ("Returns blocklist", "Nobody is blocked.", ">Add<", "are refused online"):
        assert english not in html, english


def test_a_refused_blocklist_entry_says_why_in_the_admins_language(client):
    shop, pages = admin_pages_store()
    response = post_page(client, shop, pages["blocklist"], "de", {"email": "not an email"})
    assert response.status_code == 400
    html = unescape(response.content.decode())
    assert "Geben Sie eine E-Mail-Adresse ein." in html
    assert not ReturnBlocklistEntry.objects.filter(shop=shop).exists()


PARCELS_ENGLISH = [
    ": Paid<",
    ">Shipments<",
    "Tracking events (",
    "No tracking movement",
    "No carrier scans yet.",
    "Progress: ",
    ">Carrier<",
    ">Discounts<",
    "Back to orders",
    "The shopper has not opened the tracking page.",
]


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        (
            "fr",
            [
                ">Expéditions<",
                "Paiement : payé",
                "Événements de suivi (1)",
                "Aucun mouvement de suivi",
                "Aucun scan du transporteur pour l'instant.",
                'aria-label="Progression : En transit"',
                ">Transporteur<",
                ">Sous-total<",
                "Le client n'a pas ouvert la page de suivi.",
            ],
        ),
        (
            "es",
            [
                ">Envíos<",
                "Pago: pagado",
                "Eventos de seguimiento (1)",
                "Sin movimiento en el seguimiento",
                "Aún no hay escaneos del transportista.",
                'aria-label="Progreso: En tránsito"',
                ">Transportista<",
                ">Subtotal<",
                "El cliente no ha abierto la página de seguimiento.",
            ],
        ),
        (
            "de",
            [
                ">Sendungen<",
                "Zahlung: bezahlt",
                "Sendungsereignisse (1)",
                "Keine Bewegung in der Sendungsverfolgung",
                "Noch keine Scans des Versanddienstleisters.",
                'aria-label="Fortschritt: Unterwegs"',
                ">Versanddienst<",
                ">Zwischensumme<",
                "Der Kunde hat die Sendungsverfolgungsseite nicht geöffnet.",
            ],
        ),
    ],
)
def test_the_order_pages_parcels_read_in_the_admins_language(client, locale, words):
    shop, pages = admin_pages_store()
    html = unescape(page(client, shop, pages["order"], locale))
    for word in words:
        assert word in html, word
    for english in PARCELS_ENGLISH:
        assert english not in html, english


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        (
            "fr",
            [
                "<title>Page de suivi",
                "Afficher les articles de chaque expédition",
                "Vous aimerez peut-être",
                "Mise en page",
            ],
        ),
        (
            "es",
            [
                "<title>Página de seguimiento",
                "Mostrar los artículos de cada envío",
                "También te puede gustar",
                "Diseño",
            ],
        ),
        (
            "de",
            [
                "<title>Sendungsverfolgungsseite",
                "Die Artikel jeder Sendung anzeigen",
                "Das könnte Ihnen auch gefallen",
                "Layout",
            ],
        ),
    ],
)
def test_the_tracking_page_settings_read_in_the_admins_language(client, locale, words):
    shop, _ = admin_pages_store()
    html = unescape(page(client, shop, "/app/tracking-page", locale))
    for word in words:
        assert word in html, word
    for english in (
        "What your customers see",
        "Show the items of each shipment",
        "You may also like",
        "Show the page on its own",
    ):
        assert english not in html, english


def test_saving_the_tracking_page_settings_says_so_in_the_admins_language(client):
    shop, _ = admin_pages_store()
    response = post_page(
        client,
        shop,
        "/app/tracking-page",
        "es",
        {"show_line_items": "on", "show_return_link": "on"},
    )
    assert response.status_code == 303
    assert "locale=es" in response["Location"]
    location = urlsplit(response["Location"])
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    html = unescape(
        client.get(location.path, {**query, "id_token": token_for(shop)}).content.decode()
    )
    assert "Ajustes de la página de seguimiento guardados." in html


NOTIFICATION_PAGES = {
    # page: (English that must be gone, {locale: words that must be there})
    "sequences": (
        ["Notification sequences", "Starts when", "Turn on", "Order confirmed", "at once"],
        {
            "fr": ["Séquences de notifications", "Démarre quand", "Activer", "Commande confirmée"],
            "es": ["Secuencias de notificaciones", "Empieza cuando", "Activar", "de inmediato"],
            "de": ["Benachrichtigungssequenzen", "Beginnt bei", "Einschalten", "7 Tage"],
        },
    ),
    "sequence": (
        ["Counted from", "After the trigger", "Step 1", "Save step", "Stop if a return"],
        {
            "fr": ["Compté à partir de", "Après le déclencheur", "Étape 1", "Enregistrer l'étape"],
            "es": ["Contado desde", "Después del desencadenante", "Paso 1", "Guardar el paso"],
            "de": ["Gezählt ab", "Nach dem Auslöser", "Schritt 1", "Schritt speichern"],
        },
    ),
    "templates": (
        ["Message templates", "Built-in templates", "Review request", "Problem with delivery"],
        {
            "fr": ["Modèles de messages", "Demande d'avis", "Problème de livraison"],
            "es": ["Plantillas de mensajes", "Solicitud de reseña", "Problema con la entrega"],
            "de": ["Nachrichtenvorlagen", "Bewertungsanfrage", "Problem bei der Zustellung"],
        },
    ),
    "template": (
        ["Button label", "Liquid works in every block", "Send test to me", "Text version"],
        {
            "fr": ["Libellé du bouton", "Liquid fonctionne dans chaque bloc", "Version texte"],
            "es": [
                "Texto del botón",
                "Liquid funciona en todos los bloques",
                "Enviarme una prueba",
            ],
            "de": ["Beschriftung der Schaltfläche", "Liquid funktioniert", "Test an mich senden"],
        },
    ),
    "messages": (
        ["Any status", "Any channel", "Scheduled", ">Created<", ">To<"],
        {
            "fr": ["Tous les statuts", "Tous les canaux", "Programmé", "Prévu le"],
            "es": ["Cualquier estado", "Cualquier canal", "Programado", "Previsto para"],
            "de": ["Jeder Status", "Jeder Kanal", "Geplant", "Fällig am"],
        },
    ),
    "suppressions": (
        ["Suppression list", "No suppressed addresses.", "Email or phone number"],
        {
            "fr": ["Liste d'exclusion", "Aucune adresse exclue.", "E-mail ou numéro de téléphone"],
            "es": ["Lista de exclusión", "No hay direcciones excluidas.", "o teléfono"],
            "de": ["Sperrliste", "Keine gesperrten Adressen.", "E-Mail oder Telefonnummer"],
        },
    ),
}


@pytest.mark.parametrize("locale", ["fr", "es", "de"])
@pytest.mark.parametrize("name", list(NOTIFICATION_PAGES))
def test_the_notification_pages_read_in_the_admins_language(client, name, locale):
    english, words = NOTIFICATION_PAGES[name]
    shop, pages = admin_pages_store()
    html = unescape(page(client, shop, pages[name], locale))
    for word in words[locale]:
        assert word in html, word
    for word in english:
        assert word not in html, word


def test_a_sequence_the_merchant_renamed_keeps_the_merchants_name(client):
    # given a built-in sequence whose name the merchant changed (stored keys never change)
    shop, pages = admin_pages_store()
    renamed = Sequence.objects.get(shop=shop, key="shipped")
    Sequence.objects.filter(pk=renamed.pk).update(name="On its way (our words)")
    # when the list is read in German
    html = unescape(page(client, shop, pages["sequences"], "de"))
    # then the built-in names are German, the merchant's name is as they wrote it
    assert "On its way (our words)" in html
    assert "Bestellung bestätigt" in html
    assert set(Sequence.objects.filter(shop=shop).values_list("key", flat=True)) >= {
        "order_confirmed",
        "shipped",
    }
    assert Sequence.objects.get(shop=shop, key="order_confirmed").name == "Order confirmed"


def test_a_refused_block_says_why_in_the_admins_language_and_saves_nothing(client):
    shop, _ = admin_pages_store()
    path = "/app/notifications/templates/shipped/email/en/blocks"
    blocks = {"subject": "Hola", "heading": "Bonjour", "text": "", "button_label": ""}
    missing = post_page(client, shop, path, "fr", {**blocks, "subject": ""})
    bad_colour = post_page(client, shop, path, "fr", {**blocks, "accent_color": "red!"})
    assert (missing.status_code, bad_colour.status_code) == (422, 422)
    html = unescape(missing.content.decode()) + unescape(bad_colour.content.decode())
    assert "L'e-mail n'a pas été enregistré" in html
    assert "Objet : Ce champ est obligatoire." in html
    assert "Couleur du bouton : saisissez une couleur au format #rrggbb." in html
    assert "The email was not saved" not in html
    assert not MessageTemplate.objects.filter(shop=shop).exists()


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        (
            "fr",
            ["Approuver le retour", "Instructions pour le client", "Refuser le retour", "Souhaite"],
        ),
        (
            "es",
            ["Aprobar la devolución", "Instrucciones para el cliente", "Rechazar la devolución"],
        ),
        (
            "de",
            ["Rücksendung genehmigen", "Anweisungen für den Kunden", "Rücksendung ablehnen"],
        ),
    ],
)
def test_a_return_reads_in_the_admins_language(client, locale, words):
    shop, pages = admin_pages_store()
    html = unescape(page(client, shop, pages["return"], locale))
    for word in words:
        assert word in html, word
    for english in (
        "Approve return",
        "Instructions for the customer",
        "Decline return",
        ">Wants<",
        "earlier return",
        "Final sale",
        "Damaged or defective",
    ):
        assert english not in html, english


def test_a_refused_return_action_says_why_in_the_admins_language_and_changes_nothing(client):
    # given a requested return Shopify has not accepted yet
    shop, pages = admin_pages_store()
    returned = ReturnRequest.objects.get(shop=shop)
    assert returned.shopify_return_id is None
    # when staff decline it from its page read in French
    response = post_page(
        client, shop, f"{pages['return']}/decline", "fr", {"reason": "FINAL_SALE", "note": ""}
    )
    # then the page says why in French, and the return is as it was
    assert response.status_code == 409
    html = unescape(response.content.decode())
    assert "Ce retour n'est pas encore dans Shopify ; il ne peut pas être refusé." in html
    assert "it can't be declined" not in html
    returned.refresh_from_db()
    assert (returned.status, returned.decline_reason) == ("REQUESTED", "")


@pytest.mark.parametrize(
    ("locale", "placed"),
    [
        ("en", "Mar 5, 2026, 9:07 AM"),
        ("es", "5 mar 2026, 09:07"),
        ("fr", "5 mar 2026, 09:07"),
        ("de", "5. Mär 2026, 09:07"),
    ],
)
def test_dates_read_as_the_admins_language_writes_them(client, locale, placed):
    # given an order placed at 14:07 UTC in a New York shop
    from datetime import UTC, datetime

    from shopapp.models import Order

    shop, pages = admin_pages_store()
    shop.timezone = "America/New_York"
    shop.save(update_fields=["timezone"])
    Order.objects.filter(shop=shop).update(
        shopify_created_at=datetime(2026, 3, 5, 14, 7, tzinfo=UTC)
    )
    # when the order list is read in that language
    html = unescape(page(client, shop, pages["orders"], locale))
    # then the date is in the shop's zone, in the language's own order and clock
    assert placed in html
    if locale != "en":
        assert "AM" not in html.split("<main", 1)[-1]
