//! The topic table the corpus is drawn from.
//!
//! Each topic has its own vocabulary so that titles, tags and descriptions
//! of one topic share words: a text-similarity ranker must be able to tell
//! that two "jazz" videos are related and a "jazz" and a "minecraft" one are
//! not. Category ids are real YouTube ones (see videoCategories).

pub(crate) struct TopicDef {
    pub name: &'static str,
    pub category: &'static str,
    pub words: &'static [&'static str],
}

pub(crate) const TOPICS: &[TopicDef] = &[
    TopicDef { name: "minecraft", category: "20", words: &["minecraft", "redstone", "survival", "creeper", "biome", "villager", "netherite", "enderman", "hardcore", "seed", "mods", "crafting", "diamond", "nether", "elytra", "farm", "skyblock", "build"] },
    TopicDef { name: "fortnite", category: "20", words: &["fortnite", "battle", "royale", "victory", "zone", "loot", "skins", "season", "squads", "storm", "builds", "sniper", "emote", "arena", "solo", "landing"] },
    TopicDef { name: "speedrunning", category: "20", words: &["speedrun", "glitch", "splits", "record", "any%", "routing", "skip", "mario", "zelda", "frame", "warp", "clip", "category", "runner", "timer", "pb"] },
    TopicDef { name: "retro gaming", category: "20", words: &["retro", "nes", "snes", "cartridge", "arcade", "genesis", "console", "pixel", "emulator", "famicom", "collection", "classic", "handheld", "crt", "boxart", "restoration"] },
    TopicDef { name: "chess", category: "20", words: &["chess", "opening", "gambit", "endgame", "grandmaster", "checkmate", "sicilian", "blitz", "bullet", "rating", "tactics", "pawn", "bishop", "knight", "rook", "elo", "carlsen"] },
    TopicDef { name: "rust programming", category: "28", words: &["rust", "programming", "cargo", "borrow", "checker", "lifetimes", "async", "tokio", "traits", "ownership", "compiler", "crate", "unsafe", "macros", "memory", "systems", "axum", "serde"] },
    TopicDef { name: "python programming", category: "28", words: &["python", "programming", "pandas", "django", "flask", "numpy", "script", "automation", "decorators", "generators", "pip", "virtualenv", "jupyter", "typing", "asyncio", "beginner"] },
    TopicDef { name: "web development", category: "28", words: &["web", "development", "javascript", "react", "css", "html", "frontend", "backend", "typescript", "nextjs", "tailwind", "api", "deploy", "responsive", "browser", "node"] },
    TopicDef { name: "machine learning", category: "28", words: &["machine", "learning", "neural", "network", "transformer", "training", "dataset", "gradient", "pytorch", "model", "inference", "embeddings", "llm", "attention", "regression", "classifier"] },
    TopicDef { name: "smartphone reviews", category: "28", words: &["smartphone", "review", "iphone", "android", "pixel", "galaxy", "camera", "battery", "unboxing", "display", "flagship", "budget", "charging", "comparison", "specs", "foldable"] },
    TopicDef { name: "pc building", category: "28", words: &["pc", "build", "gpu", "cpu", "motherboard", "cooling", "rgb", "benchmark", "ram", "ssd", "case", "airflow", "overclock", "gaming", "watercooling", "budget"] },
    TopicDef { name: "astronomy", category: "28", words: &["astronomy", "telescope", "galaxy", "nebula", "planets", "jupiter", "saturn", "astrophotography", "stars", "cosmos", "eclipse", "meteor", "observatory", "supernova", "orbit", "moon"] },
    TopicDef { name: "space exploration", category: "28", words: &["space", "rocket", "launch", "nasa", "spacex", "mars", "rover", "orbit", "astronaut", "starship", "booster", "mission", "satellite", "lunar", "station", "landing"] },
    TopicDef { name: "jazz", category: "10", words: &["jazz", "saxophone", "bebop", "trumpet", "improvisation", "swing", "piano", "standards", "trio", "quartet", "bass", "ballad", "coltrane", "davis", "smooth", "live"] },
    TopicDef { name: "classical music", category: "10", words: &["classical", "symphony", "orchestra", "mozart", "beethoven", "bach", "concerto", "violin", "sonata", "piano", "chopin", "opera", "conductor", "strings", "baroque", "recital"] },
    TopicDef { name: "hip hop", category: "10", words: &["hiphop", "rap", "beats", "freestyle", "cypher", "producer", "verse", "album", "lyrics", "flow", "boombap", "trap", "mixtape", "sample", "bars", "remix"] },
    TopicDef { name: "lofi music", category: "10", words: &["lofi", "chill", "beats", "study", "relax", "sleep", "ambient", "rain", "cozy", "playlist", "mix", "vinyl", "mellow", "night", "focus", "radio"] },
    TopicDef { name: "guitar lessons", category: "10", words: &["guitar", "lesson", "chords", "riff", "strumming", "fingerstyle", "solo", "scales", "acoustic", "electric", "pentatonic", "tabs", "blues", "pedal", "tone", "beginner"] },
    TopicDef { name: "cooking", category: "26", words: &["cooking", "recipe", "kitchen", "dinner", "chef", "pasta", "chicken", "sauce", "garlic", "steak", "curry", "spices", "knife", "skillet", "meal", "easy"] },
    TopicDef { name: "baking", category: "26", words: &["baking", "bread", "sourdough", "cake", "cookies", "pastry", "dough", "oven", "croissant", "frosting", "flour", "butter", "chocolate", "pie", "yeast", "dessert"] },
    TopicDef { name: "vegan recipes", category: "26", words: &["vegan", "plant", "based", "recipes", "tofu", "lentils", "chickpea", "salad", "protein", "smoothie", "bowl", "healthy", "dairy", "free", "tempeh", "meal"] },
    TopicDef { name: "diy woodworking", category: "26", words: &["woodworking", "diy", "workshop", "walnut", "table", "joinery", "dovetail", "chisel", "router", "sanding", "finish", "plywood", "oak", "build", "saw", "cabinet"] },
    TopicDef { name: "home gardening", category: "26", words: &["gardening", "garden", "plants", "tomatoes", "compost", "seeds", "soil", "harvest", "raised", "beds", "vegetables", "pruning", "flowers", "greenhouse", "organic", "backyard"] },
    TopicDef { name: "makeup tutorial", category: "26", words: &["makeup", "tutorial", "foundation", "eyeshadow", "contour", "lipstick", "skincare", "glam", "palette", "concealer", "brushes", "routine", "beauty", "mascara", "blush", "look"] },
    TopicDef { name: "knitting", category: "26", words: &["knitting", "yarn", "crochet", "pattern", "stitch", "sweater", "needles", "wool", "scarf", "cable", "knit", "purl", "blanket", "beginner", "cozy", "handmade"] },
    TopicDef { name: "football", category: "17", words: &["football", "soccer", "goals", "highlights", "premier", "league", "striker", "champions", "match", "penalty", "midfield", "transfer", "derby", "keeper", "tactics", "skills"] },
    TopicDef { name: "basketball", category: "17", words: &["basketball", "nba", "dunk", "playoffs", "highlights", "crossover", "three", "pointer", "rebounds", "mvp", "court", "dribble", "finals", "assist", "layup", "buzzer"] },
    TopicDef { name: "tennis", category: "17", words: &["tennis", "serve", "forehand", "backhand", "wimbledon", "rally", "slam", "volley", "clay", "court", "match", "ace", "topspin", "racket", "open", "tiebreak"] },
    TopicDef { name: "fitness", category: "17", words: &["fitness", "workout", "gym", "muscle", "cardio", "strength", "squat", "deadlift", "hiit", "abs", "training", "protein", "routine", "fat", "loss", "bodyweight"] },
    TopicDef { name: "yoga", category: "17", words: &["yoga", "stretch", "flow", "poses", "flexibility", "breathing", "vinyasa", "morning", "relaxation", "mobility", "hatha", "balance", "mat", "mindful", "beginner", "core"] },
    TopicDef { name: "cycling", category: "17", words: &["cycling", "bike", "road", "gravel", "climb", "peloton", "tour", "mountain", "trail", "cadence", "watts", "ride", "descent", "carbon", "sprint", "stage"] },
    TopicDef { name: "formula 1", category: "17", words: &["formula", "f1", "grand", "prix", "qualifying", "pit", "stop", "overtake", "verstappen", "hamilton", "ferrari", "mclaren", "circuit", "podium", "tyres", "race"] },
    TopicDef { name: "car reviews", category: "2", words: &["car", "review", "sedan", "suv", "electric", "tesla", "horsepower", "engine", "interior", "drive", "test", "hybrid", "torque", "sportscar", "mileage", "dealer"] },
    TopicDef { name: "travel", category: "19", words: &["travel", "vlog", "tokyo", "paris", "backpacking", "itinerary", "flight", "hotel", "street", "food", "tour", "budget", "guide", "island", "city", "adventure"] },
    TopicDef { name: "camping", category: "19", words: &["camping", "tent", "hiking", "wilderness", "campfire", "backpacking", "trail", "overnight", "solo", "bushcraft", "forest", "shelter", "gear", "winter", "lake", "outdoors"] },
    TopicDef { name: "stand-up comedy", category: "23", words: &["standup", "comedy", "comedian", "jokes", "special", "crowd", "roast", "funny", "set", "bits", "club", "laughs", "heckler", "netflix", "tour", "late"] },
    TopicDef { name: "sketch comedy", category: "23", words: &["sketch", "comedy", "parody", "skit", "funny", "characters", "improv", "satire", "spoof", "hilarious", "episode", "cast", "bloopers", "prank", "scene", "laughs"] },
    TopicDef { name: "history", category: "27", words: &["history", "empire", "ancient", "rome", "medieval", "war", "documentary", "kings", "dynasty", "battle", "civilization", "egypt", "revolution", "century", "historian", "maps"] },
    TopicDef { name: "mathematics", category: "27", words: &["mathematics", "math", "proof", "calculus", "algebra", "geometry", "theorem", "primes", "equations", "topology", "infinity", "numbers", "puzzle", "visual", "lecture", "olympiad"] },
    TopicDef { name: "language learning", category: "27", words: &["language", "learning", "spanish", "japanese", "french", "vocabulary", "grammar", "fluent", "pronunciation", "polyglot", "immersion", "phrases", "korean", "lesson", "conversation", "practice"] },
    TopicDef { name: "philosophy", category: "27", words: &["philosophy", "stoicism", "ethics", "socrates", "nietzsche", "existentialism", "plato", "kant", "meaning", "logic", "mind", "consciousness", "aristotle", "lecture", "ideas", "wisdom"] },
    TopicDef { name: "movie reviews", category: "1", words: &["movie", "review", "film", "trailer", "director", "cinema", "spoilers", "box", "office", "sequel", "oscar", "screenplay", "marvel", "horror", "critic", "ending"] },
    TopicDef { name: "anime", category: "1", words: &["anime", "manga", "episode", "shonen", "studio", "opening", "season", "characters", "isekai", "ranking", "arc", "waifu", "mecha", "adaptation", "dub", "reaction"] },
    TopicDef { name: "world news", category: "25", words: &["news", "world", "report", "breaking", "election", "economy", "summit", "analysis", "crisis", "government", "policy", "interview", "global", "update", "correspondent", "politics"] },
    TopicDef { name: "dogs", category: "15", words: &["dog", "puppy", "training", "golden", "retriever", "rescue", "tricks", "husky", "walk", "cute", "breed", "shepherd", "leash", "treats", "obedience", "corgi"] },
    TopicDef { name: "cats", category: "15", words: &["cat", "kitten", "cute", "funny", "meow", "rescue", "purring", "tabby", "litter", "toys", "shelter", "adoption", "whiskers", "compilation", "care", "sleepy"] },
    TopicDef { name: "personal finance", category: "22", words: &["finance", "money", "investing", "budget", "stocks", "savings", "retirement", "index", "funds", "debt", "credit", "passive", "income", "dividend", "taxes", "frugal"] },
    TopicDef { name: "true crime", category: "24", words: &["crime", "mystery", "case", "unsolved", "detective", "investigation", "murder", "suspect", "evidence", "documentary", "cold", "trial", "witness", "disappearance", "forensic", "story"] },
];

pub(crate) const FIRST_NAMES: &[&str] = &[
    "Alex", "Sam", "Jordan", "Taylor", "Morgan", "Riley", "Casey", "Jamie", "Avery", "Quinn", "Maya", "Leo",
    "Nora", "Hugo", "Ines", "Kenji", "Aiko", "Lucas", "Emma", "Omar", "Sofia", "Mateo", "Priya", "Arjun",
    "Chloe", "Felix", "Greta", "Ivan", "Lena", "Marco", "Nina", "Oscar", "Pablo", "Rosa", "Theo", "Yuki",
];

pub(crate) const COUNTRIES: &[&str] = &["US", "GB", "CA", "DE", "FR", "JP", "BR", "IN", "AU", "ES", "MX", "KR"];

/// The real category list (videoCategories_list_regionCode_2019.json): id, title, assignable.
pub(crate) const CATEGORIES: &[(&str, &str, bool)] = &[
    ("1", "Film & Animation", true),
    ("2", "Autos & Vehicles", true),
    ("10", "Music", true),
    ("15", "Pets & Animals", true),
    ("17", "Sports", true),
    ("18", "Short Movies", false),
    ("19", "Travel & Events", true),
    ("20", "Gaming", true),
    ("21", "Videoblogging", false),
    ("22", "People & Blogs", true),
    ("23", "Comedy", true),
    ("24", "Entertainment", true),
    ("25", "News & Politics", true),
    ("26", "Howto & Style", true),
    ("27", "Education", true),
    ("28", "Science & Technology", true),
    ("29", "Nonprofits & Activism", true),
    ("30", "Movies", false),
    ("31", "Anime/Animation", false),
    ("32", "Action/Adventure", false),
    ("33", "Classics", false),
    ("34", "Comedy", false),
    ("35", "Documentary", false),
    ("36", "Drama", false),
    ("37", "Family", false),
    ("38", "Foreign", false),
    ("39", "Horror", false),
    ("40", "Sci-Fi/Fantasy", false),
    ("41", "Thriller", false),
    ("42", "Shorts", false),
    ("43", "Shows", false),
    ("44", "Trailers", false),
];
