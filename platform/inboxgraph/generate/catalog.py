"""Fixed vocabularies for the demo generator: names, places, products, campaigns."""

from __future__ import annotations

import random
from dataclasses import dataclass

FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Paul",
    "Ashley",
    "Steven",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kevin",
    "Carol",
    "Brian",
    "Amanda",
    "George",
    "Melissa",
    "Timothy",
    "Deborah",
    "Ronald",
    "Stephanie",
    "Jason",
    "Rebecca",
    "Ryan",
    "Laura",
    "Jacob",
    "Sharon",
    "Gary",
    "Cynthia",
    "Nicholas",
    "Kathleen",
    "Eric",
    "Amy",
    "Jonathan",
    "Angela",
    "Stephen",
    "Anna",
    "Larry",
    "Ruth",
    "Justin",
    "Brenda",
    "Scott",
    "Pamela",
    "Brandon",
    "Nicole",
    "Benjamin",
    "Katherine",
    "Samuel",
    "Samantha",
    "Noah",
    "Emma",
    "Liam",
    "Olivia",
    "Lucas",
    "Mia",
    "Mateo",
    "Sofia",
    "Hugo",
    "Chloe",
    "Lea",
    "Jonas",
    "Elena",
    "Marco",
    "Giulia",
    "Yuki",
    "Aiko",
]

LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Muller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Tanaka",
    "Suzuki",
    "Sato",
    "Kowalski",
    "Novak",
    "Silva",
    "Santos",
    "Costa",
    "Jensen",
]

EMAIL_DOMAINS = (
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "proton.me",
    "gmx.de",
    "orange.fr",
    "example.org",
    "fastmail.com",
)

PLACES = (
    ("New York", "US"),
    ("Los Angeles", "US"),
    ("Chicago", "US"),
    ("Austin", "US"),
    ("Seattle", "US"),
    ("Toronto", "CA"),
    ("London", "GB"),
    ("Manchester", "GB"),
    ("Berlin", "DE"),
    ("Munich", "DE"),
    ("Paris", "FR"),
    ("Lyon", "FR"),
    ("Madrid", "ES"),
    ("Milan", "IT"),
    ("Amsterdam", "NL"),
    ("Stockholm", "SE"),
    ("Sydney", "AU"),
    ("Tokyo", "JP"),
)

CATEGORIES = {
    "Apparel": ("Linen Shirt", "Denim Jacket", "Wool Sweater", "Rain Coat", "Chino Pants"),
    "Shoes": ("Running Shoe", "Leather Boot", "Canvas Sneaker", "Trail Shoe", "Sandal"),
    "Home": ("Ceramic Mug", "Throw Blanket", "Desk Lamp", "Linen Sheets", "Plant Pot"),
    "Beauty": ("Face Serum", "Hand Cream", "Lip Balm", "Shampoo Bar", "Sun Screen"),
    "Electronics": ("Wireless Earbuds", "Phone Charger", "Smart Speaker", "USB Hub", "E-Reader"),
    "Outdoor": ("Day Pack", "Water Bottle", "Camp Stove", "Head Lamp", "Trekking Poles"),
    "Books": ("Cookbook", "Travel Guide", "Novel", "Field Guide", "Poetry Collection"),
    "Toys": ("Puzzle", "Building Set", "Plush Bear", "Board Game", "Kite"),
}

PAGES = (
    ("Home", "/"),
    ("Sale", "/sale"),
    ("New Arrivals", "/new"),
    ("About", "/about"),
    ("Help", "/help"),
)

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/18.0 Safari/605.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36",
)

JOB_TITLES = ("Engineer", "Designer", "Teacher", "Nurse", "Manager", "Analyst", "Founder", "Chef")
INDUSTRIES = ("Software", "Retail", "Healthcare", "Education", "Finance", "Media", "Hospitality")
COMPANY_SIZES = ("1-10", "11-50", "51-200", "201-1000", "1000+")
AGE_RANGES = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
INCOME_BANDS = ("<30k", "30-60k", "60-100k", "100-150k", "150k+")

BOUNCE_REASONS = (
    "550 5.1.1 The email account that you tried to reach does not exist",
    "552 5.2.2 Mailbox full",
    "550 5.7.1 Message rejected as spam by content filter",
)

JUNK_ANONYMOUS_IDS = ("null", "undefined", "anonymous", "0", "")


@dataclass(frozen=True)
class Product:
    product_id: str
    sku: str
    name: str
    category: str
    price: float


def build_products(seed: int) -> tuple[Product, ...]:
    """The shop's catalogue: a few variants of every product name, prices fixed by the seed."""
    rng = random.Random(f"{seed}:catalog")
    products: list[Product] = []
    number = 1
    for category, names in CATEGORIES.items():
        for name in names:
            for variant in ("Classic", "Premium", "Eco"):
                price = round(rng.uniform(6, 180) * (1.6 if variant == "Premium" else 1.0), 2)
                products.append(
                    Product(
                        product_id=f"P{number:04d}",
                        sku=f"SKU-{number:05d}",
                        name=f"{variant} {name}",
                        category=category,
                        price=price,
                    )
                )
                number += 1
    return tuple(products)
