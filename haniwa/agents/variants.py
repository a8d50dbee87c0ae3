"""Grounding the model's string arguments in the conversation: CJK character variants and widths.

Small multilingual models slip Chinese character forms into Japanese (``铜线`` for ``銅線``, MODELS.md) and
sometimes write full-width letters. A tool that looks names up then misses. :func:`ground` puts an
argument back in the form the conversation already used: when the argument is not written anywhere in
the known text (the user's messages, earlier results, allowed values) but matches a span of it once both
are folded — simplified and traditional forms to Japanese ones, full-width to plain — it becomes that
span. An argument that matches nothing is left alone: the user may really mean something new, and a
Chinese-speaking user who wrote ``铜线`` keeps ``铜线``.

The table is data, not rules keyed to any task: common simplified (and some traditional) characters whose
Japanese form differs, one character for one character.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from haniwa.agents.base import Tool

__all__ = ["fold", "ground", "ground_arguments"]

# pairs: <variant><Japanese form>, separated by spaces
_PAIRS = """
爱愛 罢罷 备備 贝貝 笔筆 毕畢 边辺 变変 标標 别別 宾賓 补補 仓倉 产産 长長 车車 彻徹 陈陳 诚誠 乘乗
迟遅 齿歯 础礎 处処 传伝 创創 词詞 从従 错錯 达達 带帯 单単 导導 邓鄧 敌敵 递逓 电電 东東 动動 冻凍
对対 顿頓 夺奪 恶悪 儿児 尔爾 发発 范範 飞飛 费費 丰豊 风風 凤鳳 妇婦 负負 该該 盖蓋 冈岡 刚剛 钢鋼
纲綱 个個 给給 宫宮 贡貢 沟溝 构構 购購 顾顧 关関 观観 馆館 贯貫 广広 规規 归帰 龟亀 贵貴 过過 汉漢
后後 户戸 护護 华華 话話 怀懐 坏壊 欢歓 环環 还還 换換 唤喚 获獲 货貨 祸禍 击撃 机機 积積 极極 级級
计計 记記 纪紀 济済 继継 际際 价価 驾駕 坚堅 间間 简簡 见見 舰艦 剑剣 荐薦 奖奨 讲講 酱醤 胶膠 阶階
节節 结結 洁潔 紧緊 进進 劲勁 经経 惊驚 竞競 镜鏡 纠糾 举挙 剧劇 据拠 惧懼 卷巻 觉覚 决決 绝絶 军軍
开開 壳殻 课課 垦墾 恳懇 块塊 宽寛 矿鉱 扩拡 兰蘭 蓝藍 览覧 烂爛 劳労 乐楽 类類 泪涙 离離 历歴 丽麗
厉厲 练練 炼錬 两両 疗療 辽遼 猎猟 临臨 灵霊 龄齢 领領 刘劉 龙竜 录録 陆陸 虑慮 轮輪 论論 罗羅 马馬
买買 卖売 满満 门門 们們 梦夢 庙廟 灭滅 鸣鳴 亩畝 难難 脑脳 恼悩 鸟鳥 宁寧 农農 浓濃 诺諾 盘盤 赔賠
喷噴 评評 凭憑 齐斉 气気 弃棄 启啓 迁遷 铅鉛 钱銭 枪槍 桥橋 亲親 轻軽 庆慶 穷窮 驱駆 权権 劝勧 确確
让譲 热熱 认認 荣栄 软軟 锐鋭 润潤 伞傘 丧喪 扫掃 杀殺 纱紗 闪閃 伤傷 赏賞 烧焼 绍紹 设設 摄摂 绅紳
审審 胜勝 绳縄 圣聖 师師 诗詩 时時 识識 实実 势勢 视視 试試 饰飾 适適 释釈 收収 兽獣 书書 输輸 术術
树樹 帅帥 说説 丝糸 饲飼 诉訴 虽雖 岁歳 孙孫 损損 锁鎖 态態 谈談 叹嘆 汤湯 讨討 腾騰 题題 铁鉄 听聴
厅庁 头頭 图図 团団 托託 驼駝 网網 围囲 为為 伟偉 卫衛 违違 纬緯 谓謂 闻聞 问問 稳穏 务務 雾霧 误誤
戏戯 细細 虾蝦 吓嚇 县県 现現 宪憲 线線 乡郷 详詳 响響 项項 协協 胁脅 谢謝 兴興 须須 许許 续続 绪緒
选選 训訓 寻尋 压圧 亚亜 严厳 盐塩 验験 阳陽 样様 养養 药薬 爷爺 业業 仪儀 亿億 忆憶 义義 艺芸 议議
异異 译訳 阴陰 银銀 饮飲 隐隠 应応 营営 拥擁 优優 忧憂 邮郵 犹猶 鱼魚 渔漁 语語 狱獄 预預 员員 园園
圆円 远遠 愿願 约約 跃躍 阅閲 云雲 运運 杂雑 灾災 载載 赞賛 脏臓 择択 泽沢 责責 贼賊 增増 赠贈 战戦
张張 帐帳 账帳 胀脹 赵趙 这這 针針 侦偵 诊診 阵陣 镇鎮 证証 郑鄭 织織 职職 执執 纸紙 质質 钟鐘 种種
众衆 轴軸 诸諸 烛燭 贮貯 转転 庄荘 资資 总総 纵縦 组組 铜銅 强強 查査 况況 订訂 贸貿 库庫 询詢 币幣
读読 讯訊 鲜鮮 鸡鶏 饭飯 饼餅 锅鍋 铃鈴 锡錫 镀鍍 铸鋳 锻鍛 无無 页頁 韦韋 伦倫 纽紐 苏蘇 纤繊 维維
纺紡 绵綿 红紅 绿緑 额額 兑兌 质質 压圧 贴貼 缩縮 厘厘 码碼 输輸 尘塵 刹刹 虏虜 沪滬 渐漸
鐵鉄 廣広 國国 學学 體体 氣気 關関 發発 價価 數数 號号 會会 來来 當当 處処 變変 單単 圖図 萬万 與与
實実 樂楽 驗験 戰戦 讀読 鹽塩 寫写 區区 傳伝 轉転 輕軽 圓円 溫温 濕湿 晝昼 醫医 藥薬 戀恋 齒歯 龍竜
燒焼 淺浅 狀状 總総 錢銭 爐炉 廳庁 聽聴 顯顕 覽覧 觀観 歡歓 權権 勸勧 續続 纖繊 壓圧 擴拡 礦鉱 鑛鉱
"""


def _table() -> dict[int, str]:
    table: dict[int, str] = {}
    for pair in _PAIRS.split():
        variant, japanese = pair[0], pair[1]
        if variant != japanese:
            table[ord(variant)] = japanese
    return table


_TABLE = _table()


def _char(c: str) -> str:
    c = _TABLE.get(ord(c), c)
    n = unicodedata.normalize("NFKC", c)
    return n.lower() if len(n) == 1 else c.lower()


def fold(text: str) -> str:
    """``text`` with each character folded (variant → Japanese form, width, case); same length."""
    return "".join(_char(c) for c in text)


def ground(value: str, known: Iterable[str]) -> str:
    """``value``, or the span of ``known`` text it stands for when only variants or widths differ."""
    value_folded = fold(value.strip())
    if not value_folded or value_folded == value.strip().lower():
        return value  # nothing to fold: ASCII, kana, Japanese forms only
    texts = list(known)
    if any(value in t for t in texts):
        return value  # written like this in the conversation already
    for t in texts:
        i = fold(t).find(value_folded)
        if i >= 0:
            return t[i : i + len(value_folded)]
    return value


def ground_arguments(tool: Tool, args: Mapping[str, Any], known: Sequence[str]) -> dict[str, Any]:
    """A call's string arguments, each grounded in ``known`` (the user's messages and results so far)."""
    types = {p.name: p.type for p in tool.parameters}
    return {
        k: ground(v, known) if types.get(k) == "string" and isinstance(v, str) else v for k, v in args.items()
    }
